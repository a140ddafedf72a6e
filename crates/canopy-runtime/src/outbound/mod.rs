//! Outbound HTTP for user-defined steps, guarded against server-side request forgery.
//!
//! A URL in a step definition is chosen by whoever authors the definition, and a run's input
//! may feed it; without a guard it could reach the cloud metadata service, the database or
//! anything else on the worker's network. [`client`] builds a [`GuardedClient`] (a
//! `reqwest::Client` with its policy) that refuses non-public targets at three points:
//!
//! - the literal part of every URL ([`check_url`]): scheme (http/https only) and IP-literal
//!   hosts, which reqwest connects to without asking the resolver;
//! - every resolved address (a custom resolver), so a public name pointing at `10.0.0.1`, or
//!   re-pointed there after authoring, is refused too;
//! - every redirect hop (a custom redirect policy, at most [`MAX_REDIRECTS`]), by the same two
//!   checks.
//!
//! The client never uses a proxy from the environment: through a proxy the resolver would see
//! the proxy's name instead of the target's.
//!
//! [`OutboundPolicy`] loosens the guard: `allow_private` turns it off for addresses, and
//! `allow_hosts` lists trusted hosts (a local sink, an internal service) that may resolve to
//! private addresses. An entry is a host (`sink.internal`, `127.0.0.1`, `::1`) or a host with a
//! port (`localhost:8080`, `[::1]:8080`); a host listed only with ports is allowed on those
//! ports only.

mod guard;
mod http_step;

use std::sync::Arc;
use std::time::Duration;

pub use guard::refusal;
pub use http_step::{DEFAULT_TIMEOUT, HttpStep, MAX_RESPONSE};

/// Redirect hops one request may follow.
pub const MAX_REDIRECTS: usize = 5;

/// Which targets outbound requests may reach beyond the public internet.
#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy {
    /// Allow every address (development, tests, single-tenant installs).
    pub allow_private: bool,
    /// Hosts (or `host:port`) allowed even when they resolve to non-public addresses.
    pub allow_hosts: Vec<String>,
}

/// Why an outbound request was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The target is not public and the policy does not allow it.
    #[error("refused to connect to {host}: {reason}")]
    Refused { host: String, reason: String },
    /// Not a URL this client sends to (scheme, missing host).
    #[error("{0}")]
    InvalidUrl(String),
    /// The client could not be built (TLS setup).
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

impl OutboundError {
    /// The step error code: `ssrf_refused` or `invalid_config`.
    pub fn code(&self) -> &'static str {
        match self {
            OutboundError::Refused { .. } => "ssrf_refused",
            OutboundError::InvalidUrl(_) | OutboundError::Client(_) => "invalid_config",
        }
    }
}

impl OutboundPolicy {
    /// Whether `host` (a name or an IP, without brackets) on `port` is listed.
    fn lists(&self, host: &str, port: Option<u16>) -> bool {
        let host = normalize_host(host);
        let mut listed_with_ports = false;
        for entry in &self.allow_hosts {
            let (h, p) = split_entry(entry);
            if h != host {
                continue;
            }
            match p {
                None => return true,
                Some(p) if Some(p) == port => return true,
                Some(_) => listed_with_ports = true,
            }
        }
        // Without a port to compare (the resolver's view), any listing of the name counts;
        // the port is enforced on the URL by `check_url`.
        port.is_none() && listed_with_ports
    }

    /// Whether `host` appears only as `host:port` entries, none of them for `port`.
    fn pinned_elsewhere(&self, host: &str, port: u16) -> bool {
        let host = normalize_host(host);
        let mut pinned = false;
        for entry in &self.allow_hosts {
            let (h, p) = split_entry(entry);
            if h == host {
                match p {
                    None => return false,
                    Some(p) if p == port => return false,
                    Some(_) => pinned = true,
                }
            }
        }
        pinned
    }
}

/// Lower case, no brackets, no trailing dot: how hosts are compared.
fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// `host`, `host:port`, `ipv6`, `[ipv6]` or `[ipv6]:port`.
fn split_entry(entry: &str) -> (String, Option<u16>) {
    let entry = entry.trim();
    if let Some(rest) = entry.strip_prefix('[')
        && let Some((h, tail)) = rest.split_once(']')
    {
        let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
        return (normalize_host(h), port);
    }
    match entry.rsplit_once(':') {
        // One colon: host and port. More: a bare IPv6 address.
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (normalize_host(h), Some(port)),
            Err(_) => (normalize_host(entry), None),
        },
        _ => (normalize_host(entry), None),
    }
}

/// Checks what can be checked without resolving: the scheme, the presence of a host, an
/// IP-literal host against the policy, and a host pinned to other ports by `allow_hosts`.
/// Services call it when a definition with a literal URL is authored.
pub fn check_url(url: &url::Url, policy: &OutboundPolicy) -> Result<(), OutboundError> {
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(OutboundError::InvalidUrl(format!(
                "unsupported URL scheme '{other}' (only http and https)"
            )));
        }
    }
    let port = url.port_or_known_default().unwrap_or(0);
    let (host, ip) = match url.host() {
        None => return Err(OutboundError::InvalidUrl("the URL has no host".to_owned())),
        Some(url::Host::Domain(d)) => (d.to_owned(), None),
        Some(url::Host::Ipv4(a)) => (a.to_string(), Some(std::net::IpAddr::V4(a))),
        Some(url::Host::Ipv6(a)) => (a.to_string(), Some(std::net::IpAddr::V6(a))),
    };
    if policy.pinned_elsewhere(&host, port) {
        return Err(OutboundError::Refused {
            host: format!("{host}:{port}"),
            reason: "the host is allowed only on the ports listed in allow_hosts".to_owned(),
        });
    }
    if let Some(ip) = ip
        && !policy.allow_private
        && !policy.lists(&host, Some(port))
        && let Some(reason) = refusal(ip)
    {
        return Err(OutboundError::Refused {
            host,
            reason: format!("{reason} address"),
        });
    }
    Ok(())
}

/// The guarded client for `policy`; `timeout` bounds each whole request (a request may set
/// its own). Installs the TLS provider ([`crate::init_tls`]) if need be.
pub fn client(policy: &OutboundPolicy, timeout: Duration) -> Result<GuardedClient, OutboundError> {
    Ok(GuardedClient {
        client: build(policy, timeout)?,
        policy: policy.clone(),
    })
}

/// The reqwest client: filtering resolver, checked redirects, no proxy.
fn build(policy: &OutboundPolicy, timeout: Duration) -> Result<reqwest::Client, OutboundError> {
    crate::init_tls();
    let hop_policy = policy.clone();
    let redirect = reqwest::redirect::Policy::custom(move |attempt| {
        // `previous` holds the first URL too, so it has one more entry than hops taken.
        if attempt.previous().len() > MAX_REDIRECTS {
            let err = guard::TooManyRedirects;
            return attempt.error(err);
        }
        match check_url(attempt.url(), &hop_policy) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(e),
        }
    });
    reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(guard::GuardedResolver::new(policy.clone())))
        .redirect(redirect)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("canopy/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| OutboundError::Client(e.to_string()))
}

/// The guarded client with its policy: what callers should hold. [`GuardedClient::request`]
/// checks the URL's literal part before anything is sent, which the client alone cannot do
/// for IP-literal hosts (reqwest connects to those without asking the resolver).
#[derive(Clone, Debug)]
pub struct GuardedClient {
    client: reqwest::Client,
    policy: OutboundPolicy,
}

impl GuardedClient {
    /// Same as [`client`].
    pub fn new(policy: OutboundPolicy, timeout: Duration) -> Result<Self, OutboundError> {
        client(&policy, timeout)
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// A request to `url` once [`check_url`] accepts it.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &url::Url,
    ) -> Result<reqwest::RequestBuilder, OutboundError> {
        check_url(url, &self.policy)?;
        Ok(self.client.request(method, url.clone()))
    }
}

/// The [`OutboundError`] inside a reqwest error, when the guard caused it.
pub fn refused_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a OutboundError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(o) = e.downcast_ref::<OutboundError>() {
            return Some(o);
        }
        cur = e.source();
    }
    None
}

/// Whether a reqwest error came from exceeding [`MAX_REDIRECTS`].
pub(crate) fn too_many_redirects(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<guard::TooManyRedirects>() {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn literal_checks() {
        let p = OutboundPolicy::default();
        for bad in [
            "http://127.0.0.1/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://192.0.2.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            let e = check_url(&url(bad), &p).unwrap_err();
            assert_eq!(e.code(), "ssrf_refused", "{bad}: {e}");
        }
        assert!(check_url(&url("https://93.184.215.14/"), &p).is_ok());
        assert!(check_url(&url("https://example.com/"), &p).is_ok());
        let e = check_url(&url("file:///etc/passwd"), &p).unwrap_err();
        assert_eq!(e.code(), "invalid_config");
        assert!(check_url(&url("ftp://example.com/"), &p).is_err());
    }

    #[test]
    fn allow_lists() {
        let p = OutboundPolicy {
            allow_private: false,
            allow_hosts: vec!["127.0.0.1:8080".into(), "::1".into(), "Sink.Local".into()],
        };
        assert!(check_url(&url("http://127.0.0.1:8080/x"), &p).is_ok());
        assert!(check_url(&url("http://127.0.0.1:8081/x"), &p).is_err());
        assert!(check_url(&url("http://[::1]:9/"), &p).is_ok());
        assert!(p.lists("sink.local.", None));
        assert!(p.lists("127.0.0.1", None));
        assert!(!p.lists("127.0.0.2", None));
        let open = OutboundPolicy {
            allow_private: true,
            allow_hosts: vec![],
        };
        assert!(check_url(&url("http://10.1.2.3/"), &open).is_ok());
    }

    #[test]
    fn entries_split() {
        assert_eq!(split_entry("a.b:80"), ("a.b".into(), Some(80)));
        assert_eq!(split_entry("A.b"), ("a.b".into(), None));
        assert_eq!(split_entry("::1"), ("::1".into(), None));
        assert_eq!(split_entry("[::1]:81"), ("::1".into(), Some(81)));
        assert_eq!(split_entry("[::1]"), ("::1".into(), None));
    }
}
