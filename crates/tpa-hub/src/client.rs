//! HTTP to the Hub: authentication, redirects, retries, and the Hub's error
//! codes turned into [`HubError`]s.

use std::time::Duration;

use ureq::Body;
use ureq::http::{Response, Uri};

use crate::error::HubError;
use crate::repo::RepoId;

/// How transient failures (429, 5xx, dropped connections, stalls) are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Consecutive failed attempts before giving up; a transfer that made
    /// progress starts counting again.
    pub attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 6,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// What a request was for, so that an error can name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub repo: &'a RepoId,
    /// The revision asked for, or the commit once resolved.
    pub revision: &'a str,
    /// The file, for downloads.
    pub path: Option<&'a str>,
}

impl Target<'_> {
    pub(crate) fn describe(&self) -> String {
        match self.path {
            Some(path) => format!("{path} of {}", self.repo),
            None => format!("{} at {}", self.repo, self.revision),
        }
    }
}

/// One attempt's failure: either final, or worth another attempt.
#[derive(Debug)]
pub(crate) enum Failure {
    Fatal(HubError),
    Transient {
        reason: String,
        /// The server's Retry-After, when it gave one.
        retry_after: Option<Duration>,
        /// Whether this attempt moved the work forward (bytes received).
        progressed: bool,
    },
}

impl Failure {
    pub(crate) fn transient(reason: impl Into<String>) -> Failure {
        Failure::Transient {
            reason: reason.into(),
            retry_after: None,
            progressed: false,
        }
    }
}

impl From<HubError> for Failure {
    fn from(e: HubError) -> Failure {
        Failure::Fatal(e)
    }
}

/// The bytes a ranged GET asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bytes {
    /// From this offset to the end.
    From(u64),
    /// The first `len` bytes from `start`.
    Span { start: u64, len: u64 },
}

impl Bytes {
    /// The `Range` header's value; HTTP range ends are inclusive (reading
    /// `start + len` as the end is the off-by-one that llama.cpp's remote
    /// reader and huggingface_hub#4602 had).
    pub(crate) fn header(self) -> String {
        match self {
            Bytes::From(from) => format!("bytes={from}-"),
            Bytes::Span { start, len } => format!("bytes={start}-{}", start + len.max(1) - 1),
        }
    }
}

/// A connection to one Hub endpoint, with or without a token.
pub struct Client {
    agent: ureq::Agent,
    endpoint: String,
    endpoint_origin: Option<(String, String)>,
    token: Option<String>,
    retry: RetryPolicy,
}

impl Client {
    /// A client of `endpoint` (e.g. `https://huggingface.co`), sending
    /// `token` to that host only.
    pub fn new(endpoint: &str, token: Option<String>) -> Client {
        let config = ureq::Agent::config_builder()
            // Redirects are followed in `get`: the CDN hop must keep the
            // Range header and lose the Authorization header, and tests check both.
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            // A stalled transfer is retried (and resumed) rather than waited on.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("tpa-download/", env!("CARGO_PKG_VERSION")))
            .build();
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        Client {
            agent: config.into(),
            endpoint_origin: origin(&endpoint),
            endpoint,
            token: token.filter(|t| !t.is_empty()),
            retry: RetryPolicy::default(),
        }
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Client {
        self.retry = retry;
        self
    }

    /// The endpoint, without a trailing `/`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(crate) fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The token, for requests to the endpoint's own origin only.
    fn token_for(&self, url: &str) -> Option<&str> {
        let same = self.endpoint_origin.is_some() && origin(url) == self.endpoint_origin;
        self.token.as_deref().filter(|_| same)
    }

    /// GET `url` (only the bytes `range` names, if given), following
    /// redirects. Returns a 2xx response; everything else becomes a [`Failure`].
    pub(crate) fn get(
        &self,
        url: &str,
        range: Option<Bytes>,
        target: Target<'_>,
    ) -> Result<Response<Body>, Failure> {
        let mut url = url.to_owned();
        for _ in 0..10 {
            let mut request = self.agent.get(&url);
            if let Some(token) = self.token_for(&url) {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            if let Some(range) = range {
                request = request.header("Range", range.header());
            }
            let response = request.call().map_err(|e| transport_failure(e, &url))?;
            match response.status().as_u16() {
                200..=299 => return Ok(response),
                301 | 302 | 303 | 307 | 308 => {
                    let location = header(&response, "location").ok_or_else(|| {
                        Failure::Fatal(HubError::BadResponse {
                            what: target.describe(),
                            url: url.clone(),
                            reason: "a redirect without a Location".into(),
                        })
                    })?;
                    url = join_location(&url, &location);
                }
                status => return Err(self.status_failure(response, status, &url, target)),
            }
        }
        Err(Failure::Fatal(HubError::BadResponse {
            what: target.describe(),
            url,
            reason: "more than 10 redirects".into(),
        }))
    }

    /// Runs `attempt` until it succeeds, fails for good, or has failed
    /// `attempts` times in a row; waits with exponential backoff (or the
    /// server's Retry-After) in between and tells `on_retry` about each wait.
    pub(crate) fn retrying<T>(
        &self,
        what: &str,
        on_retry: &dyn Fn(&str, Duration),
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, HubError> {
        let mut failures = 0u32;
        loop {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Transient {
                    reason,
                    retry_after,
                    progressed,
                }) => {
                    failures = if progressed { 1 } else { failures + 1 };
                    if failures >= self.retry.attempts {
                        return Err(HubError::GaveUp {
                            what: what.to_owned(),
                            attempts: failures,
                            reason,
                        });
                    }
                    let backoff = self
                        .retry
                        .first_delay
                        .saturating_mul(1 << (failures - 1).min(16));
                    let delay = retry_after.unwrap_or(backoff).min(self.retry.max_delay);
                    on_retry(&format!("{what}: {reason}"), delay);
                    std::thread::sleep(delay);
                }
            }
        }
    }

    /// The Hub's answer to a failed request, by status and `X-Error-Code`.
    fn status_failure(
        &self,
        mut response: Response<Body>,
        status: u16,
        url: &str,
        target: Target<'_>,
    ) -> Failure {
        if status == 429 || status == 408 || status >= 500 {
            return Failure::Transient {
                reason: format!("HTTP {status}"),
                retry_after: header(&response, "retry-after")
                    .and_then(|s| s.trim().parse().ok())
                    .map(Duration::from_secs),
                progressed: false,
            };
        }
        let repo = target.repo.to_string();
        let repo_url = format!("{}/{repo}", self.endpoint);
        let code = header(&response, "x-error-code").unwrap_or_default();
        let error = match code.as_str() {
            "GatedRepo" if self.has_token() => HubError::GatedNoAccess {
                repo,
                url: repo_url,
            },
            "GatedRepo" => HubError::GatedWithoutToken {
                repo,
                url: repo_url,
            },
            "RevisionNotFound" => HubError::RevisionNotFound {
                repo,
                revision: target.revision.to_owned(),
            },
            "EntryNotFound" => HubError::EntryNotFound {
                repo,
                path: target.path.unwrap_or_default().to_owned(),
                commit: target.revision.to_owned(),
            },
            // A 401 without a code, to a request with a token: the token itself.
            "" if status == 401 && self.has_token() => HubError::TokenRefused {
                endpoint: self.endpoint.clone(),
            },
            // The Hub answers 401 for private repositories it will not show.
            "RepoNotFound" | "" if status == 401 || code == "RepoNotFound" => {
                HubError::RepoNotFound {
                    repo,
                    endpoint: self.endpoint.clone(),
                }
            }
            _ => {
                let message = header(&response, "x-error-message").or_else(|| {
                    let body = response.body_mut().with_config().limit(4096);
                    body.read_to_string().ok()
                });
                let detail = message
                    .map(|m| m.trim().chars().take(200).collect::<String>())
                    .filter(|m| !m.is_empty())
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                HubError::Http {
                    what: target.describe(),
                    url: url.to_owned(),
                    status,
                    detail,
                }
            }
        };
        Failure::Fatal(error)
    }
}

/// A request that got no HTTP answer. Refused connections and unknown hosts
/// are final; everything else (resets, timeouts) is retried.
fn transport_failure(error: ureq::Error, url: &str) -> Failure {
    let host = url
        .parse::<Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| url.to_owned());
    let unreachable = |reason: String| {
        Failure::Fatal(HubError::Unreachable {
            endpoint: host.clone(),
            reason,
        })
    };
    match error {
        ureq::Error::HostNotFound => unreachable("host not found".into()),
        ureq::Error::ConnectionFailed => unreachable("connection failed".into()),
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            unreachable("connection refused".into())
        }
        other => Failure::transient(other.to_string()),
    }
}

/// A response header as text.
pub(crate) fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Scheme and authority of a URL, lower-cased.
fn origin(url: &str) -> Option<(String, String)> {
    let uri = url.parse::<Uri>().ok()?;
    Some((
        uri.scheme_str()?.to_ascii_lowercase(),
        uri.authority()?.as_str().to_ascii_lowercase(),
    ))
}

/// A redirect target: absolute, or relative to the URL that redirected.
fn join_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let Some((scheme, authority)) = origin(base) else {
        return location.to_owned();
    };
    if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let dir = base.rsplit_once('/').map_or(base, |(d, _)| d);
        format!("{dir}/{location}")
    }
}

/// The `rel="next"` URL of a `Link` header (the tree listing's pagination).
pub(crate) fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let url = url.trim();
        (is_next && url.starts_with('<') && url.ends_with('>'))
            .then(|| url[1..url.len() - 1].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_to_the_endpoint_only() {
        let client = Client::new("https://hub.example:8443/", Some("secret".into()));
        assert_eq!(
            client.token_for("https://HUB.example:8443/api/x"),
            Some("secret")
        );
        assert_eq!(client.token_for("https://cdn.example/x"), None);
        assert_eq!(client.token_for("http://hub.example:8443/x"), None);
        assert_eq!(client.token_for("https://hub.example/x"), None);
    }

    #[test]
    fn redirect_targets_resolve_against_the_redirecting_url() {
        let base = "http://127.0.0.1:9/org/m/resolve/abc/a.bin";
        assert_eq!(join_location(base, "http://cdn/x"), "http://cdn/x");
        assert_eq!(join_location(base, "/y/z"), "http://127.0.0.1:9/y/z");
        assert_eq!(
            join_location(base, "b.bin"),
            "http://127.0.0.1:9/org/m/resolve/abc/b.bin"
        );
    }

    #[test]
    fn retries_back_off_exponentially_and_progress_restarts_the_count() {
        let ms = Duration::from_millis;
        let client = Client::new("http://127.0.0.1:9", None).with_retry(RetryPolicy {
            attempts: 4,
            first_delay: ms(1),
            max_delay: ms(3),
        });
        let waits = std::cell::RefCell::new(Vec::new());
        let on_retry = |_: &str, d: Duration| waits.borrow_mut().push(d);
        let result: Result<(), HubError> =
            client.retrying("x", &on_retry, || Err(Failure::transient("HTTP 503")));
        assert!(matches!(result, Err(HubError::GaveUp { attempts: 4, .. })));
        assert_eq!(*waits.borrow(), [ms(1), ms(2), ms(3)]);

        // Attempts that moved forward do not use up the budget; Retry-After wins.
        waits.borrow_mut().clear();
        let mut calls = 0;
        let result = client.retrying("x", &on_retry, || {
            calls += 1;
            match calls {
                1..=6 => Err(Failure::Transient {
                    reason: "dropped".into(),
                    retry_after: Some(ms(0)),
                    progressed: true,
                }),
                _ => Ok(calls),
            }
        });
        assert_eq!(result.unwrap(), 7);
        assert_eq!(*waits.borrow(), [ms(0); 6]);
    }

    #[test]
    fn next_link_is_found_among_others() {
        let link = r#"<https://h/a?cursor=1>; rel="prev", <https://h/a?cursor=3>; rel="next""#;
        assert_eq!(next_link(link).as_deref(), Some("https://h/a?cursor=3"));
        assert_eq!(next_link(r#"<https://h/a>; rel="prev""#), None);
    }
}
