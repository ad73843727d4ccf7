//! Fetching documents from client-given URLs without opening an SSRF hole: only http(s);
//! every hop's host is resolved here and refused if any address is loopback, private,
//! link-local (169.254.169.254), unique-local, multicast or otherwise non-public, for IPv4
//! and IPv6 (and IPv4 inside IPv6); the connection is pinned to the checked address so a
//! second DNS answer cannot swap it; redirects are followed by hand, each hop checked;
//! size and time are capped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use docpipe_core::ports::Result;
use docpipe_core::webhooks::{SignedRequest, WebhookSender};
use docpipe_core::{ErrorCode, Fetched, Fetcher, StageError};
use url::Url;

/// Bounds and exceptions of [`HttpFetcher`].
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Whole fetch, all hops.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_redirects: usize,
    /// `host:port` pairs exempt from the address check (e.g. an intranet document server
    /// an operator trusts). Empty by default.
    pub allowed_hosts: Vec<String>,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_redirects: 5,
            allowed_hosts: Vec::new(),
        }
    }
}

/// The SSRF-safe [`Fetcher`].
#[derive(Debug, Clone, Default)]
pub struct HttpFetcher {
    policy: FetchPolicy,
}

fn not_allowed(msg: impl Into<String>) -> StageError {
    StageError::new(ErrorCode::UrlNotAllowed, msg)
}

fn failed(msg: impl Into<String>) -> StageError {
    StageError::new(ErrorCode::UrlFetchFailed, msg)
}

/// Whether an address is a public unicast destination.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let seg = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address: judge that one.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return is_public_v4(v4);
    }
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        return is_public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // site local (deprecated)
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        || (seg[0] == 0x2001 && seg[1] == 0) // Teredo
        || seg[0..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible and other ::/96
}

impl HttpFetcher {
    pub fn new(policy: FetchPolicy) -> Self {
        Self { policy }
    }

    /// Checks a URL without fetching it: scheme, credentials, and every address its host
    /// resolves to. Returns the URL and the one address to connect to.
    pub async fn check(&self, url: &str) -> Result<(Url, SocketAddr)> {
        let url = Url::parse(url).map_err(|e| not_allowed(format!("not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(not_allowed(format!(
                "only http and https URLs are fetched, not {}:",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(not_allowed("URLs with credentials are not fetched"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| not_allowed("the URL has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| not_allowed("the URL has no port"))?;
        let exempt = self
            .policy
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&format!("{host}:{port}")));
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(
                self.policy.connect_timeout,
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await
            .map_err(|_| failed(format!("resolving {host} timed out")))?
            .map_err(|e| failed(format!("cannot resolve {host}: {e}")))?
            .collect(),
        };
        let first = *addrs
            .first()
            .ok_or_else(|| failed(format!("{host} resolves to no address")))?;
        if !exempt && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(not_allowed(format!(
                "{host} resolves to {}, which is not a public address",
                bad.ip()
            )));
        }
        Ok((url, first))
    }

    async fn fetch_inner(&self, url: &str, max_bytes: u64) -> Result<Fetched> {
        let mut current = url.to_owned();
        for _hop in 0..=self.policy.max_redirects {
            let (url, addr) = self.check(&current).await?;
            let host = url.host_str().unwrap_or_default().to_owned();
            // A client per hop, pinned to the address just checked.
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(self.policy.connect_timeout)
                .no_proxy()
                .resolve(&host, addr)
                .build()
                .map_err(|e| StageError::internal(format!("HTTP client: {e}")))?;
            let mut resp = client.get(url.clone()).send().await.map_err(|e| {
                if e.is_connect() || e.is_timeout() {
                    StageError::unavailable(format!("cannot reach {host}: {e}"))
                } else {
                    failed(format!("fetching {host}: {e}"))
                }
            })?;
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| failed(format!("{status} without a Location")))?;
                current = url
                    .join(location)
                    .map_err(|e| failed(format!("bad redirect {location:?}: {e}")))?
                    .to_string();
                continue;
            }
            if !status.is_success() {
                return Err(failed(format!("{host} answered {status}")));
            }
            if let Some(len) = resp.content_length()
                && len > max_bytes
            {
                return Err(StageError::new(
                    ErrorCode::FileTooLarge,
                    format!("the document at the URL is {len} bytes; the limit is {max_bytes}"),
                ));
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| failed(format!("reading from {host}: {e}")))?
            {
                if (bytes.len() + chunk.len()) as u64 > max_bytes {
                    return Err(StageError::new(
                        ErrorCode::FileTooLarge,
                        format!("the document at the URL is over the {max_bytes}-byte limit"),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            let filename = url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            return Ok(Fetched { bytes, filename });
        }
        Err(failed(format!(
            "more than {} redirects",
            self.policy.max_redirects
        )))
    }
}

#[async_trait]
impl Fetcher for HttpFetcher {
    async fn check(&self, url: &str) -> Result<()> {
        HttpFetcher::check(self, url).await.map(|_| ())
    }

    async fn fetch(&self, url: &str, max_bytes: u64) -> Result<Fetched> {
        tokio::time::timeout(self.policy.timeout, self.fetch_inner(url, max_bytes))
            .await
            .map_err(|_| {
                failed(format!(
                    "fetching took longer than {} s",
                    self.policy.timeout.as_secs()
                ))
            })?
    }
}

/// Webhook deliveries go through the same guard as URL ingest: every address checked,
/// the connection pinned to it, no redirect followed (a receiver that redirects has not
/// received), and a deadline on the whole request.
#[async_trait]
impl WebhookSender for HttpFetcher {
    async fn check(&self, url: &str) -> Result<()> {
        HttpFetcher::check(self, url).await.map(|_| ())
    }

    async fn send(&self, request: &SignedRequest, timeout: Duration) -> Result<()> {
        let (url, addr) = HttpFetcher::check(self, &request.url).await?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.policy.connect_timeout.min(timeout))
            .timeout(timeout)
            .no_proxy()
            .resolve(&host, addr)
            .build()
            .map_err(|e| StageError::internal(format!("HTTP client: {e}")))?;
        let mut post = client.post(url).body(request.body.clone());
        for (name, value) in &request.headers {
            post = post.header(name.as_str(), value.as_str());
        }
        let resp = post
            .send()
            .await
            .map_err(|e| StageError::unavailable(format!("cannot deliver to {host}: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(failed(format!("{host} answered {status}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(!is_public(ip), "{ip} allowed");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(is_public(ip), "{ip} refused");
        }
    }
}
