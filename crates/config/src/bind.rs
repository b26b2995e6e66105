//! `HOST:PORT` addresses servers listen on.
//!
//! A socket address type would refuse `localhost:8080`, which every other
//! server accepts; so the config keeps the text, checks its shape when it is
//! read (so a typo is an error naming the key, not a failure at bind time)
//! and resolves the host when the server starts.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An address to listen on: an IP socket address (`127.0.0.1:8080`,
/// `[::1]:8080`) or a host name and port (`localhost:8080`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BindAddr(String);

impl BindAddr {
    /// The address as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The socket addresses the host name resolves to (one for an IP
    /// address). Fails with a message naming the address when the name does
    /// not resolve.
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        if let Ok(addr) = self.0.parse::<SocketAddr>() {
            return Ok(vec![addr]);
        }
        match self.0.to_socket_addrs() {
            Ok(addrs) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if addrs.is_empty() { Err(format!("{:?} resolves to no address", self.0)) } else { Ok(addrs) }
            }
            Err(e) => Err(format!("cannot resolve {:?}: {e}", self.0)),
        }
    }
}

impl FromStr for BindAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.parse::<SocketAddr>().is_ok() {
            return Ok(BindAddr(s.to_string()));
        }
        let bad = || {
            format!("{s:?} is not a socket address or HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080 or localhost:8080)")
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        port.parse::<u16>().map_err(|_| format!("{s:?}: port {port:?} is not a number from 0 to 65535"))?;
        // A host name: dot-separated labels of letters, digits and hyphens.
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(valid_label) {
            return Err(bad());
        }
        Ok(BindAddr(s.to_string()))
    }
}

impl TryFrom<String> for BindAddr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<BindAddr> for String {
    fn from(b: BindAddr) -> String {
        b.0
    }
}

impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::BindAddr;

    #[test]
    fn accepts_ip_addresses_and_host_names() {
        for ok in ["127.0.0.1:8080", "[::1]:0", "0.0.0.0:9999", "localhost:8080", "api.example.com:443"] {
            assert_eq!(ok.parse::<BindAddr>().unwrap().as_str(), ok);
        }
        for bad in ["nowhere", "localhost", ":8080", "localhost:http", "local host:80", "host:70000", "-x:1"] {
            assert!(bad.parse::<BindAddr>().is_err(), "{bad} accepted");
        }
        let addrs = "localhost:0".parse::<BindAddr>().unwrap().resolve().unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
