//! Where a request goes, from the URL the user gave: the scheme (plain or TLS), the address
//! to connect to, the `Host` value, the request target and the appid.

use std::net::SocketAddr;

use url::Url;

use super::error::ClientError;

/// Where the request goes, derived from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `https://`: the connection is TLS.
    pub https: bool,
    /// `host[:port]` for the `Host` header and messages.
    pub authority: String,
    /// Path and query, as sent in the request line.
    pub request_target: String,
    pub appid: String,
    port: u16,
    host: String,
}

impl Target {
    pub(crate) fn parse(url: &str, appid: Option<&str>) -> Result<Target, ClientError> {
        let bad = |why: &str| ClientError::Usage(format!("bad URL {url:?}: {why}"));
        let parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let https = match parsed.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?
            .to_string();
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        let authority = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let path = parsed.path();
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        let appid = match appid {
            Some(a) => a.to_string(),
            None if !first.is_empty() => first.to_string(),
            None => return Err(bad("no appid: the path's first segment names the app")),
        };
        let request_target = match parsed.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        Ok(Target {
            https,
            authority,
            request_target,
            appid,
            port,
            host,
        })
    }

    /// `http://host[:port]` or `https://…`: what download URLs the client prints start with.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    /// The host without an IPv6 literal's brackets: what TLS checks the certificate against.
    pub fn host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    pub(crate) fn addrs(&self) -> Result<Vec<SocketAddr>, ClientError> {
        use std::net::ToSocketAddrs;
        (self.host(), self.port)
            .to_socket_addrs()
            .map(|a| a.collect())
            .map_err(|source| ClientError::Connect {
                target: self.authority.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appid_defaults_to_the_first_path_segment() {
        let t = Target::parse("http://127.0.0.1:8080/app1/photos/a.jpg?x=1", None).unwrap();
        assert_eq!(t.appid, "app1");
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.request_target, "/app1/photos/a.jpg?x=1");
        let t = Target::parse("http://example.com/app1/a.jpg", Some("other")).unwrap();
        assert_eq!(t.appid, "other");
        assert_eq!(t.authority, "example.com");
        assert_eq!(t.port, 80);
        assert!(!t.https);
    }

    #[test]
    fn https_defaults_to_port_443_and_keeps_the_host_for_tls() {
        let t = Target::parse("https://uploads.example.com/app1/a.jpg", None).unwrap();
        assert!(t.https);
        assert_eq!(t.port, 443);
        assert_eq!(t.host(), "uploads.example.com");
        assert_eq!(t.origin(), "https://uploads.example.com");
        let t = Target::parse("https://[::1]:8443/app1/a.jpg", None).unwrap();
        assert_eq!(t.host(), "::1");
        assert_eq!(t.origin(), "https://[::1]:8443");
    }

    #[test]
    fn unusable_urls_are_usage_errors() {
        for url in [
            "https://example.com/",
            "ftp://example.com/app/a",
            "http://example.com/",
            "not a url",
        ] {
            let e = Target::parse(url, None).unwrap_err();
            assert!(matches!(e, ClientError::Usage(_)), "{url}: {e:?}");
            assert_eq!(e.exit_code(), crate::client::exit::USAGE);
        }
    }
}
