use std::time::{Duration, Instant};

use postern_mail::{PolicyRequest, Stage, Verdict};

use super::*;
use crate::convert;

fn request(stage: Stage, edit: impl FnOnce(&mut PolicyRequest)) -> Request {
    let mut r = PolicyRequest::new(stage);
    r.client_address = Some("192.0.2.7".parse().expect("an address"));
    r.helo_name = "mx.example.net".to_owned();
    r.sender = "a@example.net".to_owned();
    r.recipient = "b@example.org".to_owned();
    r.instance = "t1".to_owned();
    r.queue_id = "4XyZ".to_owned();
    r.trusted = true;
    edit(&mut r);
    convert::request(&r).expect("a stage of the WIT package")
}

fn cache(attributes: &[Attribute], ttl: u32, max: usize) -> VerdictCache {
    let spec = CacheSpec::new(attributes.to_vec(), ttl).expect("a ttl above 0 keeps");
    VerdictCache::new(spec, max)
}

#[test]
fn the_key_is_the_stage_and_the_declared_attributes() {
    let c = cache(&[Attribute::ClientAddress, Attribute::Trusted], 60, 8);
    let base = c.spec().key(&request(Stage::Recipient, |_| {}));
    // Undeclared attributes, the transaction and the queue id do not count.
    let other = request(Stage::Recipient, |r| {
        r.sender = "x@example.com".to_owned();
        r.instance = "t2".to_owned();
        r.queue_id = "5AbC".to_owned();
    });
    assert_eq!(c.spec().key(&other), base);
    // A declared one, or the stage, does.
    let moved = request(Stage::Recipient, |r| {
        r.client_address = Some("192.0.2.8".parse().expect("an address"));
    });
    assert_ne!(c.spec().key(&moved), base);
    assert_ne!(
        c.spec()
            .key(&request(Stage::Recipient, |r| r.trusted = false)),
        base
    );
    assert_ne!(c.spec().key(&request(Stage::Sender, |_| {})), base);
}

#[test]
fn two_texts_cannot_run_together_into_one_key() {
    let c = cache(&[Attribute::HeloName, Attribute::Sender], 60, 8);
    let one = request(Stage::Sender, |r| {
        r.helo_name = "ab".to_owned();
        r.sender = "c".to_owned();
    });
    let two = request(Stage::Sender, |r| {
        r.helo_name = "a".to_owned();
        r.sender = "bc".to_owned();
    });
    assert_ne!(c.spec().key(&one), c.spec().key(&two));
}

#[test]
fn a_verdict_is_kept_for_its_ttl_and_no_longer() {
    let c = cache(&[Attribute::Trusted], 60, 8);
    let key = c.spec().key(&request(Stage::Recipient, |_| {}));
    let at = Instant::now();
    assert_eq!(c.get(&key, at), None);
    c.put(key.clone(), Verdict::Permit, at);
    assert_eq!(
        c.get(&key, at + Duration::from_secs(59)),
        Some(Verdict::Permit)
    );
    assert_eq!(c.get(&key, at + Duration::from_secs(60)), None);
}

#[test]
fn a_full_cache_drops_the_expired_verdicts_first_then_all() {
    let c = cache(&[Attribute::Recipient], 60, 2);
    let key = |rcpt: &str| {
        c.spec().key(&request(Stage::Recipient, |r| {
            rcpt.clone_into(&mut r.recipient);
        }))
    };
    let at = Instant::now();
    c.put(key("1@x"), Verdict::Dunno, at);
    c.put(key("2@x"), Verdict::Dunno, at + Duration::from_secs(30));
    // Full: "1@x" has expired by then and goes; "2@x" stays.
    let later = at + Duration::from_secs(61);
    c.put(key("3@x"), Verdict::Permit, later);
    assert_eq!(c.len(), 2);
    assert_eq!(c.get(&key("2@x"), later), Some(Verdict::Dunno));
    // Full of live verdicts: all go, the new one stays.
    c.put(key("4@x"), Verdict::Permit, later);
    assert_eq!(c.len(), 1);
    assert_eq!(c.get(&key("4@x"), later), Some(Verdict::Permit));
    // Replacing a kept key needs no room.
    c.put(key("4@x"), Verdict::Dunno, later);
    assert_eq!(c.len(), 1);
}

#[test]
fn the_plugin_sees_only_what_it_declared() {
    let c = cache(&[Attribute::HeloName, Attribute::Trusted], 60, 8);
    let full = request(Stage::Helo, |_| {});
    let masked = c.spec().mask(&full);
    assert_eq!(masked.stage, full.stage);
    assert_eq!(masked.helo_name, "mx.example.net");
    assert!(masked.trusted);
    for text in [
        &masked.client_address,
        &masked.sender,
        &masked.recipient,
        &masked.instance,
        &masked.queue_id,
        &masked.protocol_name,
    ] {
        assert!(text.is_empty(), "{text:?} should be masked");
    }
    // What it sees is what it is keyed by.
    assert_eq!(c.spec().key(&masked), c.spec().key(&full));
}

#[test]
fn a_declaration_is_cleaned_up() {
    assert_eq!(CacheSpec::new(vec![Attribute::Sender], 0), None);
    let spec = CacheSpec::new(
        vec![Attribute::Sender, Attribute::Trusted, Attribute::Sender],
        u32::MAX,
    )
    .expect("kept");
    assert_eq!(spec.attributes, [Attribute::Sender, Attribute::Trusted]);
    assert_eq!(spec.ttl, MAX_TTL);
    let none = VerdictCache::new(spec, 0);
    let key = none.spec().key(&request(Stage::Recipient, |_| {}));
    none.put(key.clone(), Verdict::Permit, Instant::now());
    assert_eq!(none.get(&key, Instant::now()), None, "size 0: nothing kept");
}
