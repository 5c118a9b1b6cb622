//! Registries that misbehave, and installs that race: a hostile registry
//! (a loopback HTTP server in this test) that announces a 100 MB
//! manifest, streams an endless one, drips one byte at a time, or sends a
//! component longer than its manifest said, each refused with a clear
//! error in bounded time, having read a bounded number of bytes; and
//! concurrent `postern plugin install` / `remove` commands on one plugin
//! directory, none of whose plugins.lock entries is lost.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::registry::{
    after, answer, command, fails, lock, ok, publish, setup, variant, write_config,
};

/// How a hostile registry answers one path.
#[derive(Clone)]
enum Answer {
    /// 200 with these bytes.
    Bytes(Vec<u8>),
    /// 200, `Content-Length: 100 MB`, then zeros for as long as read.
    Announced,
    /// 200, no length, zeros for as long as read.
    Endless,
    /// 200, one byte every 200 ms, forever.
    Drip,
}

/// A loopback "registry" answering fixed paths; counts the bytes it
/// managed to send, to show how much a client read before it gave up.
struct Hostile {
    host: String,
    sent: Arc<AtomicU64>,
}

impl Hostile {
    fn start(routes: HashMap<String, Answer>) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let routes = Arc::new(routes);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (routes, counter) = (routes.clone(), counter.clone());
                std::thread::spawn(move || serve(stream, &routes, &counter));
            }
        });
        Hostile { host, sent }
    }

    fn r(&self, rest: &str) -> String {
        format!("oci://{}/postern/{rest}", self.host)
    }
}

fn serve(stream: TcpStream, routes: &HashMap<String, Answer>, sent: &AtomicU64) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        // The rest of the head.
        let mut authorization = String::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some((name, value)) = h.split_once(':')
                && name.eq_ignore_ascii_case("authorization")
            {
                authorization = value.trim().to_owned();
            }
        }
        // `private` needs a bearer token, which `/token` gives for the
        // credentials u:pw (the distribution spec's token flow).
        if path.starts_with("/v2/postern/private/") && authorization != "Bearer tok-123" {
            let host = out.local_addr().unwrap();
            let head = format!(
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nWWW-Authenticate: Bearer \
                 realm=\"http://{host}/token\",service=\"hostile\"\r\n\r\n"
            );
            if out.write_all(head.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        if path.starts_with("/token?") {
            // base64("u:pw")
            let (status, body) = if authorization == "Basic dTpwdw==" {
                ("200 OK", "{\"token\": \"tok-123\"}")
            } else {
                ("401 Unauthorized", "")
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if out.write_all(head.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let zeros = [0u8; 64 << 10];
        let mut write = |bytes: &[u8]| -> bool {
            let done = out.write_all(bytes).is_ok();
            if done {
                sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            done
        };
        match routes.get(&path) {
            None => {
                if !write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n") {
                    return;
                }
            }
            Some(Answer::Bytes(b)) => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", b.len());
                if !write(head.as_bytes()) || !write(b) {
                    return;
                }
            }
            Some(Answer::Announced) => {
                write(b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n");
                while write(&zeros) {}
                return;
            }
            Some(Answer::Endless) => {
                write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                while write(&zeros) {}
                return;
            }
            Some(Answer::Drip) => {
                write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
                while write(b"{") {
                    std::thread::sleep(Duration::from_millis(200));
                }
                return;
            }
        }
    }
}

/// A real plugin artifact, published to a layout directory: its manifest
/// and blobs, by digest.
struct Artifact {
    manifest: Vec<u8>,
    config: (String, Vec<u8>),
    layer: (String, Vec<u8>),
}

fn artifact(dir: &Path, config: &Path) -> Artifact {
    let layout = dir.join("layout/answer");
    let r = format!("file://{}:1.0.0", layout.display());
    let out = publish(config, &[], &answer(), &r);
    let manifest = after(&out, "manifest ").to_owned();
    let layer = after(&out, "component ").to_owned();
    // The layout holds three blobs: the manifest, the layer, the config.
    let mut config = None;
    for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let digest = format!("sha256:{}", path.file_name().unwrap().to_string_lossy());
        if digest != manifest && digest != layer {
            config = Some((digest, std::fs::read(&path).unwrap()));
        }
    }
    let blob = |digest: &str| {
        let hex = digest.strip_prefix("sha256:").unwrap();
        std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
    };
    Artifact {
        manifest: blob(&manifest),
        config: config.unwrap(),
        layer: (layer.clone(), blob(&layer)),
    }
}

/// `postern ARGS` must fail within `bound`; returns its output.
fn fails_within(config: &Path, args: &[&str], bound: Duration) -> String {
    let start = Instant::now();
    let err = fails(config, args);
    assert!(
        start.elapsed() < bound,
        "{args:?} took {:?}: {err}",
        start.elapsed()
    );
    err
}

#[test]
fn a_hostile_registry_costs_an_error_not_memory() {
    let (tmp, config) = setup("");
    let a = artifact(tmp.path(), &config);
    let manifests = |name: &str| format!("/v2/postern/{name}/manifests/1.0.0");
    let blobs = |name: &str, digest: &str| format!("/v2/postern/{name}/blobs/{digest}");
    let mut routes = HashMap::new();
    routes.insert(manifests("announced"), Answer::Announced);
    routes.insert(manifests("endless"), Answer::Endless);
    routes.insert(manifests("drip"), Answer::Drip);
    for name in ["longblob", "real", "private"] {
        routes.insert(manifests(name), Answer::Bytes(a.manifest.clone()));
        routes.insert(blobs(name, &a.config.0), Answer::Bytes(a.config.1.clone()));
    }
    routes.insert(blobs("longblob", &a.layer.0), Answer::Endless);
    routes.insert(blobs("real", &a.layer.0), Answer::Bytes(a.layer.1.clone()));
    routes.insert(
        blobs("private", &a.layer.0),
        Answer::Bytes(a.layer.1.clone()),
    );
    let hostile = Hostile::start(routes);
    // Whatever a client stops reading at, the kernel's socket buffers
    // take a few MB more; 32 MiB is far below the 100 MB on offer.
    let bounded = |what: &str| {
        // Let the server notice the closed connection.
        std::thread::sleep(Duration::from_millis(300));
        let n = hostile.sent.swap(0, Ordering::Relaxed);
        assert!(n < 32 << 20, "{what}: the client read {n} bytes");
    };

    for name in ["announced", "endless"] {
        let err = fails_within(
            &config,
            &["plugin", "install", &hostile.r(&format!("{name}:1.0.0"))],
            Duration::from_secs(30),
        );
        assert!(
            err.contains("the manifest is larger than 4194304 bytes")
                && err.contains(&hostile.host),
            "{name}: {err}"
        );
        bounded(name);
    }

    // Longer than the manifest says.
    let err = fails_within(
        &config,
        &["plugin", "install", &hostile.r("longblob:1.0.0")],
        Duration::from_secs(30),
    );
    assert!(
        err.contains(&format!(
            "blob {} is larger than {} bytes",
            a.layer.0,
            a.layer.1.len()
        )),
        "{err}"
    );
    bounded("longblob");

    // A registry that never finishes: its timeout ends the command.
    write_config(
        tmp.path(),
        &format!(
            "[plugins.registries.\"{}\"]\ntimeout = \"2s\"\n",
            hostile.host
        ),
    );
    let err = fails_within(
        &config,
        &["plugin", "install", &hostile.r("drip:1.0.0")],
        Duration::from_secs(20),
    );
    assert!(err.contains("did not finish within 2s"), "{err}");

    // A component over max_plugin_size is not downloaded at all.
    write_config(tmp.path(), "[plugins]\nmax_plugin_size = \"1K\"\n");
    hostile.sent.store(0, Ordering::Relaxed);
    let err = fails(&config, &["plugin", "install", &hostile.r("real:1.0.0")]);
    assert!(
        err.contains("more than [plugins] max_plugin_size (1024 bytes)"),
        "{err}"
    );
    let sent = hostile.sent.load(Ordering::Relaxed);
    assert!(sent < a.layer.1.len() as u64, "{sent} bytes sent");

    // The same artifact installs under the default bound; nothing of the
    // failures was left behind.
    write_config(tmp.path(), "");
    ok(&config, &["plugin", "install", &hostile.r("real:1.0.0")]);
    let l = lock(tmp.path());
    assert_eq!(l.matches("[[plugin]]").count(), 1, "{l}");

    // A registry with bearer tokens: anonymous is refused by its token
    // realm; the credentials get a token, and the token the artifact.
    let err = fails(&config, &["plugin", "install", &hostile.r("private:1.0.0")]);
    assert!(
        err.contains("authentication required") && err.contains("no credentials"),
        "{err}"
    );
    let password = tmp.path().join("pw");
    std::fs::write(&password, "pw\n").unwrap();
    write_config(
        tmp.path(),
        &format!(
            "[plugins.registries.\"{}\"]\nusername = \"u\"\npassword_file = \"{}\"\n",
            hostile.host,
            password.display()
        ),
    );
    ok(&config, &["plugin", "install", &hostile.r("private:1.0.0")]);
    assert!(lock(tmp.path()).contains("private"));
}

/// Starts `postern ARGS` without waiting.
fn spawn(config: &Path, args: &[&str]) -> std::process::Child {
    command(config, args, None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn all_succeed(children: Vec<std::process::Child>) {
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn concurrent_installs_lose_no_entry() {
    const N: u8 = 6;
    let (tmp, config) = setup("");
    // N + 3 plugins of different names, each in its own layout directory.
    let refs: Vec<String> = (0..N + 3)
        .map(|n| {
            let file = variant(tmp.path(), n);
            let r = format!(
                "file://{}:1.0.0",
                tmp.path().join(format!("layout/p{n}")).display()
            );
            publish(&config, &["--no-check"], &file, &r);
            r
        })
        .collect();

    let installs = refs[..N as usize]
        .iter()
        .map(|r| spawn(&config, &["plugin", "install", r]))
        .collect();
    all_succeed(installs);
    let l = lock(tmp.path());
    for r in &refs[..N as usize] {
        assert!(l.contains(r.as_str()), "{r} lost:\n{l}");
    }

    // Removes and installs at once.
    let mixed = (0..3)
        .map(|i| spawn(&config, &["plugin", "remove", &refs[i]]))
        .chain(
            (N as usize..N as usize + 3).map(|i| spawn(&config, &["plugin", "install", &refs[i]])),
        )
        .collect();
    all_succeed(mixed);
    let l = lock(tmp.path());
    for (i, r) in refs.iter().enumerate() {
        assert_eq!(l.contains(r.as_str()), i >= 3, "{r}:\n{l}");
    }
    let out = ok(&config, &["plugin", "verify"]);
    assert!(out.contains(&format!("{N} installed, 0 failed")), "{out}");
}
