//! The reads of the OCI distribution API (manifests, blobs, tag lists)
//! over reqwest, each body bounded: a hostile or broken registry that
//! announces or streams a 100 MB manifest, or a blob longer than the
//! manifest said, costs an error at the bound, never the memory.
//! (`oci-client` reads a manifest, a tag list, an error body or a token
//! answer whole, so pulls do not go through it; pushes still do.)
//!
//! Authentication as the distribution spec describes it: a request
//! answered `401` carries a `WWW-Authenticate` challenge; `Basic` is
//! answered with the credentials, `Bearer realm=...,service=...,scope=...`
//! by asking the realm for a token (with the credentials, or anonymously
//! as public repositories allow) and sending that. The answer that worked
//! is kept for the next requests of the command.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode, Url};

use crate::access::Credentials;
use crate::error::Error;
use crate::reference::is_loopback;

/// How long a connection may take to open: a registry that is down
/// should be said so quickly, not after the kernel's minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read may stall.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest manifest or tag list read: the Distribution registry's
/// own limit for manifests (a plugin's is under 2 KiB).
pub(crate) const MAX_MANIFEST: usize = 4 << 20;
/// The largest token answer read (a JWT is a few KiB).
const MAX_TOKEN: usize = 1 << 20;
/// How much of an error body is read to say what went wrong.
const MAX_ERROR_BODY: usize = 16 << 10;

/// A registry host's reads.
pub(crate) struct Http {
    client: reqwest::Client,
    /// `http://HOST` for loopback, `https://HOST` otherwise.
    base: String,
    host: String,
    credentials: Option<Credentials>,
    /// The `Authorization` value the last challenge was answered with.
    authorization: Mutex<Option<String>>,
}

impl Http {
    pub(crate) fn new(host: &str, credentials: Option<Credentials>) -> Result<Http, Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            // Registries redirect blobs to storage; reqwest drops the
            // Authorization header when a redirect leaves the host.
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| Error::Registry {
                registry: host.to_owned(),
                why: format!("cannot set up HTTP: {e}"),
            })?;
        let scheme = if is_loopback(host) { "http" } else { "https" };
        Ok(Http {
            client,
            base: format!("{scheme}://{host}"),
            host: host.to_owned(),
            credentials,
            authorization: Mutex::new(None),
        })
    }

    /// The body of `GET /v2/PATH`, at most `max` bytes. `404` is
    /// [`Error::UnknownTag`] of `reference`.
    pub(crate) async fn get(
        &self,
        reference: &str,
        path: &str,
        accept: &str,
        what: &str,
        max: usize,
    ) -> Result<Vec<u8>, Error> {
        let url = format!("{}/v2/{path}", self.base);
        let response = self.send(&url, accept, path).await?;
        match response.status() {
            s if s.is_success() => self.read(response, what, max).await,
            StatusCode::NOT_FOUND => Err(Error::UnknownTag {
                reference: reference.to_owned(),
            }),
            s => {
                let body = self
                    .read(response, "error body", MAX_ERROR_BODY)
                    .await
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&body);
                let text: String = text.chars().take(300).collect();
                Err(Error::Registry {
                    registry: self.host.clone(),
                    why: format!("{what}: HTTP {s}: {}", text.trim()),
                })
            }
        }
    }

    /// Sends `GET url`, answering one authentication challenge.
    async fn send(&self, url: &str, accept: &str, path: &str) -> Result<Response, Error> {
        let mut answered = false;
        loop {
            let authorization = self.authorization.lock().ok().and_then(|a| a.clone());
            let mut request = self.client.get(url).header(ACCEPT, accept);
            if let Some(a) = &authorization {
                request = request.header(AUTHORIZATION, a);
            }
            let response = request.send().await.map_err(|e| self.transport(&e))?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if answered {
                return Err(self.refused());
            }
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let answer = self.answer(&challenge, path).await?;
            if let Ok(mut a) = self.authorization.lock() {
                *a = Some(answer);
            }
            answered = true;
        }
    }

    /// The `Authorization` value that answers `challenge`.
    async fn answer(&self, challenge: &str, path: &str) -> Result<String, Error> {
        let (scheme, params) = parse_challenge(challenge);
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.token(&params, path).await;
        }
        match &self.credentials {
            Some(c) if scheme.eq_ignore_ascii_case("basic") => Ok(basic(c)),
            Some(_) => Err(Error::Registry {
                registry: self.host.clone(),
                why: format!("unsupported authentication scheme {scheme:?}"),
            }),
            None => Err(Error::AuthRequired {
                registry: self.host.clone(),
                why: "no credentials for it".to_owned(),
            }),
        }
    }

    /// A bearer token from the challenge's realm (RFC 6750; the
    /// distribution spec's token authentication).
    async fn token(&self, params: &[(String, String)], path: &str) -> Result<String, Error> {
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let bad = |why: String| Error::Registry {
            registry: self.host.clone(),
            why,
        };
        let realm = param("realm").ok_or_else(|| bad("a Bearer challenge without realm".into()))?;
        let mut url = Url::parse(realm).map_err(|e| bad(format!("token realm {realm:?}: {e}")))?;
        // Credentials travel in clear only to this machine.
        let realm_host = url.host_str().unwrap_or_default().to_owned();
        if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&realm_host)) {
            return Err(bad(format!(
                "token realm {realm:?} is not HTTPS; credentials are not sent there"
            )));
        }
        let repository = path.split("/manifests/").next().unwrap_or(path);
        let repository = repository.split("/blobs/").next().unwrap_or(repository);
        let repository = repository.split("/tags/").next().unwrap_or(repository);
        let scope = param("scope")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("repository:{repository}:pull"));
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = param("service") {
                q.append_pair("service", service);
            }
            q.append_pair("scope", &scope);
        }
        let mut request = self.client.get(url);
        if let Some(c) = &self.credentials {
            request = request.basic_auth(&c.username, Some(c.password()));
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        match response.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(self.refused()),
            s => return Err(bad(format!("token realm answered HTTP {s}"))),
        }
        let body = self.read(response, "token answer", MAX_TOKEN).await?;
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| bad(format!("token answer is not JSON: {e}")))?;
        let token = answer
            .get("token")
            .or_else(|| answer.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("token answer without a token".into()))?;
        Ok(format!("Bearer {token}"))
    }

    /// The body of `response`, refused past `max` bytes, announced or not.
    async fn read(&self, mut response: Response, what: &str, max: usize) -> Result<Vec<u8>, Error> {
        let too_large = || Error::TooLarge {
            registry: self.host.clone(),
            what: what.to_owned(),
            max,
        };
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(&e))? {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn refused(&self) -> Error {
        Error::AuthRequired {
            registry: self.host.clone(),
            why: match &self.credentials {
                Some(c) => format!("the credentials of {} were refused", c.username),
                None => "no credentials for it".to_owned(),
            },
        }
    }

    fn transport(&self, e: &reqwest::Error) -> Error {
        // The whole chain: reqwest's own words are "error sending request".
        let mut why = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            why = format!("{why}: {s}");
            source = s.source();
        }
        if e.is_connect() || e.is_timeout() {
            Error::Unreachable {
                registry: self.host.clone(),
                why,
            }
        } else {
            Error::Registry {
                registry: self.host.clone(),
                why,
            }
        }
    }
}

/// `Basic base64(user:password)` (RFC 7617).
fn basic(c: &Credentials) -> String {
    use base64::Engine as _;
    let pair = format!("{}:{}", c.username, c.password());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The scheme and parameters of a `WWW-Authenticate` challenge (RFC 7235
/// §2.1): `Bearer realm="https://a/token",service="reg",scope="x:y:pull"`.
fn parse_challenge(text: &str) -> (String, Vec<(String, String)>) {
    let text = text.trim();
    let (scheme, mut rest) = text.split_once(' ').unwrap_or((text, ""));
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().to_owned();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            // A quoted-string; `\"` escapes a quote.
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            value.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.push((key, value));
        rest = next;
    }
    (scheme.to_owned(), params)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(
            params,
            vec![
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        let (scheme, params) = parse_challenge(r#"Basic realm="a \"b\"", x=y"#);
        assert_eq!(scheme, "Basic");
        assert_eq!(
            params,
            vec![("realm".into(), "a \"b\"".into()), ("x".into(), "y".into())]
        );
        // Junk neither panics nor loops.
        for junk in [
            "",
            "Bearer",
            "Bearer =",
            "Bearer realm=\"open",
            "Basic ,,,=,",
        ] {
            let _ = parse_challenge(junk);
        }
    }

    #[test]
    fn basic_is_base64_of_the_pair() {
        assert_eq!(
            basic(&Credentials::new("Aladdin", "open sesame")),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
