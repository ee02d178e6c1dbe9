//! Which TCP peers a hub takes: an address allow-list of CIDR blocks (`allow-from`), and without
//! one, loopback peers only when the hub has no secret (unless `allow-remote`).

use std::net::IpAddr;
use std::str::FromStr;

/// One CIDR block: an address and how many leading bits of it must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Whether `ip` is in the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.bits as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.bits as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `ADDR/BITS`, or a bare address (all its bits).
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, b) = match s.trim().split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s.trim(), None),
        };
        let addr = IpAddr::from_str(a)
            .map_err(|_| format!("'{s}' is not an address or ADDRESS/BITS block"))?
            .to_canonical();
        let most = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match b {
            None => most,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= most)
                .ok_or_else(|| format!("'{s}': the prefix length must be 0 to {most}"))?,
        };
        Ok(Cidr { addr, bits })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

/// The rule a hub applies to each TCP peer it accepts.
#[derive(Clone, Debug, Default)]
pub struct PeerRule {
    /// When not empty, only peers in these blocks.
    pub allow_from: Vec<Cidr>,
    /// Without an allow-list: loopback peers only.
    pub loopback_only: bool,
}

impl PeerRule {
    /// Why `ip` is refused, or None if it may connect.
    pub fn refuse(&self, ip: IpAddr) -> Option<String> {
        if !self.allow_from.is_empty() {
            if self.allow_from.iter().any(|c| c.contains(ip)) {
                return None;
            }
            return Some(format!(
                "address {} is not in this hub's allow-from list",
                ip.to_canonical()
            ));
        }
        if self.loopback_only && !ip.to_canonical().is_loopback() {
            return Some(format!(
                "this hub has no secret and takes connections from loopback only, not from {}; \
                 its operator can set secret-file, allow-remote or allow-from",
                ip.to_canonical()
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_match_what_they_cover_and_nothing_else() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.7".parse().unwrap()));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(one.to_string(), "192.0.2.7/32");
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_allow_list_replaces_the_loopback_rule() {
        let lo = PeerRule {
            allow_from: vec![],
            loopback_only: true,
        };
        assert!(lo.refuse("127.0.0.1".parse().unwrap()).is_none());
        assert!(lo.refuse("::ffff:127.0.0.1".parse().unwrap()).is_none());
        assert!(lo.refuse("10.0.0.1".parse().unwrap()).is_some());
        let listed = PeerRule {
            allow_from: vec!["10.0.0.0/8".parse().unwrap()],
            loopback_only: true,
        };
        assert!(listed.refuse("10.9.9.9".parse().unwrap()).is_none());
        assert!(listed.refuse("127.0.0.1".parse().unwrap()).is_some());
    }
}
