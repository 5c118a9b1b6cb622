//! `smtpd_delay_reject = no`: each restriction list is asked at its own
//! command, as Postfix does then (the client's at connect, helo's at
//! HELO/EHLO, sender's at MAIL, relay's and recipient's at RCPT), and a
//! client refused at connect gets its refusal for a greeting and `503`
//! for everything but QUIT.

use postern_mail::{Decision, PolicyRequest, Stage, Verdict};
use postern_smtp::SessionSettings;

use crate::harness::{Client, Server, codes, permit_with, refuse, settings};

/// Sends message `n` to alice in one transaction, which must be taken.
async fn send_accepted(c: &mut Client, n: usize) {
    assert_eq!(codes(&c.cmd("MAIL FROM:<s@x.test>").await), ["250"]);
    assert_eq!(codes(&c.cmd("RCPT TO:<alice@local.test>").await), ["250"]);
    assert_eq!(codes(&c.cmd("DATA").await), ["354"]);
    let r = c.cmd(&format!("Subject: {n}\r\n\r\nbody\r\n.")).await;
    assert_eq!(codes(&r), ["250"], "{r}");
}

fn undelayed() -> SessionSettings {
    SessionSettings {
        delay_reject: false,
        ..settings()
    }
}

/// The stages asked so far, in order.
fn stages(server: &Server) -> Vec<Stage> {
    server
        .policy
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.stage)
        .collect()
}

#[tokio::test]
async fn each_list_is_asked_at_its_own_command() {
    // The helo list warns, as `warn_if_reject` would: logged at EHLO.
    let rule = Box::new(|r: &PolicyRequest| match r.stage {
        Stage::Helo => permit_with(vec![Verdict::Warn("helo noted".into())]),
        _ => Decision::permit(),
    });
    let server = Server::start(undelayed(), rule).await;
    let mut c = server.client().await;
    assert_eq!(stages(&server), [Stage::Client]);
    c.ehlo().await;
    assert_eq!(stages(&server), [Stage::Client, Stage::Helo]);
    assert_eq!(codes(&c.cmd("MAIL FROM:<s@x.test>").await), ["250"]);
    assert_eq!(stages(&server), [Stage::Client, Stage::Helo, Stage::Sender]);
    assert_eq!(codes(&c.cmd("RCPT TO:<alice@local.test>").await), ["250"]);
    assert_eq!(codes(&c.cmd("RCPT TO:<bob@virt.test>").await), ["250"]);
    c.cmd("QUIT").await;
    let done = server.done().await;
    let asked: Vec<Stage> = done.requests.iter().map(|r| r.stage).collect();
    assert_eq!(
        asked,
        [
            Stage::Client,
            Stage::Helo,
            Stage::Sender,
            Stage::Relay,
            Stage::Recipient,
            Stage::Relay,
            Stage::Recipient
        ]
    );
    // The helo list saw the name it was asked about.
    assert_eq!(done.requests[1].helo_name, "client.test");
    done.logged(
        "NOQUEUE: warn: EHLO from unknown[127.0.0.1]: helo noted; proto=ESMTP helo=<client.test>",
    );
}

#[tokio::test]
async fn a_client_refused_at_connect_may_only_quit() {
    let rule = Box::new(|r: &PolicyRequest| {
        if r.stage == Stage::Client {
            refuse(
                554,
                "5.7.1",
                "<unknown[127.0.0.1]>: Client host rejected: Access denied",
                "check_client_access",
            )
        } else {
            Decision::permit()
        }
    });
    let server = Server::start(undelayed(), rule).await;
    let mut c = server.connect().await;
    assert_eq!(
        c.reply().await,
        "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied\r\n"
    );
    for command in ["EHLO client.test", "MAIL FROM:<s@x.test>", "NOOP"] {
        assert_eq!(
            c.cmd(command).await,
            "503 5.7.0 Error: access denied for unknown[127.0.0.1]\r\n",
            "{command}"
        );
    }
    assert_eq!(codes(&c.cmd("QUIT").await), ["221"]);
    let done = server.done().await;
    done.logged(
        "NOQUEUE: reject: CONNECT from unknown[127.0.0.1]: 554 5.7.1 <unknown[127.0.0.1]>: \
         Client host rejected: Access denied; proto=SMTP plugin=check_client_access",
    );
    // Nothing but the connect was asked.
    let asked: Vec<Stage> = done.requests.iter().map(|r| r.stage).collect();
    assert_eq!(asked, [Stage::Client]);
}

#[tokio::test]
async fn a_refused_helo_or_sender_is_refused_at_its_command() {
    let rule = Box::new(|r: &PolicyRequest| match r.stage {
        Stage::Helo if r.helo_name == "bad.test" => refuse(
            550,
            "5.7.1",
            "<bad.test>: Helo command rejected: Access denied",
            "check_helo_access",
        ),
        Stage::Sender if r.sender == "spam@x.test" => refuse(
            553,
            "5.7.1",
            "<spam@x.test>: Sender address rejected: Access denied",
            "check_sender_access",
        ),
        _ => Decision::permit(),
    });
    let server = Server::start(undelayed(), rule).await;
    let mut c = server.client().await;
    assert_eq!(
        c.cmd("EHLO bad.test").await,
        "550 5.7.1 <bad.test>: Helo command rejected: Access denied\r\n"
    );
    c.ehlo().await;
    assert_eq!(
        c.cmd("MAIL FROM:<spam@x.test>").await,
        "553 5.7.1 <spam@x.test>: Sender address rejected: Access denied\r\n"
    );
    // The refused MAIL started no transaction.
    assert_eq!(codes(&c.cmd("MAIL FROM:<s@x.test>").await), ["250"]);
    assert_eq!(codes(&c.cmd("RCPT TO:<alice@local.test>").await), ["250"]);
    c.cmd("QUIT").await;
    let done = server.done().await;
    done.logged(
        "NOQUEUE: reject: EHLO from unknown[127.0.0.1]: 550 5.7.1 <bad.test>: Helo command \
         rejected: Access denied; proto=ESMTP helo=<bad.test> plugin=check_helo_access",
    );
    done.logged(
        "NOQUEUE: reject: MAIL from unknown[127.0.0.1]: 553 5.7.1 <spam@x.test>: Sender \
         address rejected: Access denied; from=<spam@x.test> proto=ESMTP helo=<client.test> \
         plugin=check_sender_access",
    );
}

/// A HOLD from the client list at connect holds every message of the
/// session, as the same rule at RCPT would.
#[tokio::test]
async fn an_action_at_connect_applies_to_every_message() {
    let rule = Box::new(|r: &PolicyRequest| match r.stage {
        Stage::Client => permit_with(vec![Verdict::Hold("suspect".into())]),
        _ => Decision::permit(),
    });
    let server = Server::start(undelayed(), rule).await;
    let mut c = server.client().await;
    c.ehlo().await;
    for n in 0..2 {
        send_accepted(&mut c, n).await;
    }
    c.cmd("QUIT").await;
    let done = server.done().await;
    assert_eq!(done.messages.len(), 2);
    assert!(done.messages.iter().all(|m| m.envelope.hold));
    done.logged("NOQUEUE: hold: CONNECT from unknown[127.0.0.1]: suspect; proto=SMTP");
}

/// A HOLD the helo list chose for one name stands until the client names
/// itself again: the next name is judged alone (the client list's action
/// stays).
#[tokio::test]
async fn a_new_helo_drops_what_the_helo_list_chose_for_the_old_name() {
    let rule = Box::new(|r: &PolicyRequest| match r.stage {
        Stage::Client => permit_with(vec![Verdict::Filter("smtp:[127.0.0.1]:10025".into())]),
        Stage::Helo if r.helo_name == "suspect.test" => {
            permit_with(vec![Verdict::Hold("suspect helo".into())])
        }
        _ => Decision::permit(),
    });
    let server = Server::start(undelayed(), rule).await;
    let mut c = server.client().await;
    for (n, name) in ["suspect.test", "clean.test"].into_iter().enumerate() {
        assert_eq!(codes(&c.cmd(&format!("EHLO {name}")).await), ["250"]);
        send_accepted(&mut c, n).await;
    }
    c.cmd("QUIT").await;
    let done = server.done().await;
    let held: Vec<bool> = done.messages.iter().map(|m| m.envelope.hold).collect();
    assert_eq!(held, [true, false]);
    let filters: Vec<Option<&str>> = done
        .messages
        .iter()
        .map(|m| m.envelope.content_filter.as_deref())
        .collect();
    assert_eq!(filters, [Some("smtp:[127.0.0.1]:10025"); 2]);
}
