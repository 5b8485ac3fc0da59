//! The address guard against server-side request forgery: endpoint host names are resolved
//! here whenever the client opens a connection, and loopback, private, link-local and metadata
//! addresses are dropped (unless private addresses are allowed), so a URL cannot be pointed at
//! the internal network, not even by a DNS answer that changes after the URL was accepted. The
//! client connects only to addresses this resolver returned (a pooled connection is reused
//! without a new lookup, but its address was checked when it was opened). Literal IP hosts never
//! reach a resolver: [`check_literal`] covers them, and [`check_scheme`] refuses plain `http`
//! unless private addresses are allowed (a URL accepted while they were stays refused after).

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use partnerd_domain::webhook::is_forbidden;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A host that resolves only to addresses webhooks may not reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub host: String,
    pub why: &'static str,
}

const PRIVATE: &str = "resolves only to loopback, private, link-local or metadata addresses";

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.host, self.why)
    }
}

impl StdError for Blocked {}

/// Resolves with the system resolver and keeps only the addresses webhooks may reach.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl GuardedResolver {
    /// The addresses of `addrs` a webhook may reach; an error if none.
    pub fn keep_allowed(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Blocked> {
        let allowed: Vec<SocketAddr> =
            addrs.into_iter().filter(|a| self.allow_private || !is_forbidden(a.ip())).collect();
        if allowed.is_empty() { Err(Blocked { host: host.to_owned(), why: PRIVATE }) } else { Ok(allowed) }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = *self;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed = guard.keep_allowed(&host, found)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Refuses plain `http` unless private addresses are allowed (tests and closed networks).
pub fn check_scheme(url: &reqwest::Url, allow_private: bool) -> Result<(), Blocked> {
    if url.scheme() == "https" || allow_private {
        Ok(())
    } else {
        let why = "uses plain http, refused without --webhook-allow-private";
        Err(Blocked { host: url.host_str().unwrap_or_default().to_owned(), why })
    }
}

/// Refuses a URL whose host is a literal forbidden IP address (names go through the resolver).
pub fn check_literal(url: &reqwest::Url, allow_private: bool) -> Result<(), Blocked> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if allow_private || !is_forbidden(ip) { Ok(()) } else { Err(Blocked { host: ip.to_string(), why: PRIVATE }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_is_refused_unless_private_addresses_are_allowed() {
        let strict = GuardedResolver { allow_private: false };
        let err = match strict.resolve("localhost".parse().unwrap()).await {
            Err(e) => e,
            Ok(_) => panic!("localhost resolved to an allowed address"),
        };
        assert!(err.to_string().contains("localhost resolves only to"), "{err}");
        let open = GuardedResolver { allow_private: true };
        let addrs: Vec<SocketAddr> = open.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }

    #[test]
    fn mixed_answers_keep_only_public_addresses() {
        let strict = GuardedResolver { allow_private: false };
        let addrs: Vec<SocketAddr> =
            ["127.0.0.1:0", "93.184.216.34:0", "10.0.0.1:0"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(strict.keep_allowed("x", addrs).unwrap(), vec!["93.184.216.34:0".parse().unwrap()]);
    }

    #[test]
    fn every_private_literal_class_is_refused() {
        for host in [
            "127.0.0.1",
            "[::1]",
            "10.2.3.4",
            "172.20.0.1",
            "192.168.0.10",
            "169.254.169.254",
            "[fe80::1]",
            "[fd00:ec2::254]",
            "100.100.100.200",
            "0.0.0.0",
            "[::ffff:10.0.0.1]",
        ] {
            let url = reqwest::Url::parse(&format!("http://{host}:8080/hook")).unwrap();
            assert!(check_literal(&url, false).is_err(), "{host} allowed");
            assert!(check_literal(&url, true).is_ok(), "{host} refused although allowed");
        }
        let public = reqwest::Url::parse("https://93.184.216.34/hook").unwrap();
        assert!(check_literal(&public, false).is_ok());
    }

    #[test]
    fn plain_http_is_refused_unless_private_addresses_are_allowed() {
        let http = reqwest::Url::parse("http://hooks.example.com/x").unwrap();
        let refused = check_scheme(&http, false).unwrap_err();
        assert_eq!(refused.to_string(), "hooks.example.com uses plain http, refused without --webhook-allow-private");
        assert!(check_scheme(&http, true).is_ok());
        assert!(check_scheme(&reqwest::Url::parse("https://hooks.example.com/x").unwrap(), false).is_ok());
    }
}
