//! Where a request comes from, as the key its limits are counted under.
//!
//! Behind reverse proxies the connection's address is the nearest proxy's, so the
//! client's comes from a header the proxies write (`--client-ip-header`). In a list such
//! as `X-Forwarded-For: client, proxy1, proxy2` each proxy appends the address it saw,
//! and only the entries our own proxies appended can be trusted: the left-most is
//! whatever the client wrote. So the address is taken `--trusted-proxies` entries from
//! the right, and must parse as an IP address; otherwise the connection's own counts.
//! An IPv6 address counts by its /64, which one household or phone network holds whole:
//! counting single addresses there would give each visitor billions of keys.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::Config;

/// The key the limits count this client under.
pub fn address_key(headers: &HeaderMap, peer: IpAddr, config: &Config) -> String {
    let forwarded = config
        .client_ip_header
        .as_deref()
        .and_then(|name| headers.get(name))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| nth_from_right(value, config.trusted_proxies));
    key(forwarded.unwrap_or(peer))
}

/// The address `trusted` entries from the right of a comma-separated list (1: the last).
fn nth_from_right(list: &str, trusted: u32) -> Option<IpAddr> {
    let index = usize::try_from(trusted.max(1) - 1).ok()?;
    let entry = list.rsplit(',').nth(index)?.trim();
    // An address may come with a port: `1.2.3.4:5678`, `[2001:db8::1]:443`.
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

fn key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn config(header: Option<&str>, trusted: u32) -> Config {
        let mut config = Config::for_data_dir("data".into());
        config.client_ip_header = header.map(str::to_owned);
        config.trusted_proxies = trusted;
        config
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).expect("header"));
        map
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));

    #[test]
    fn without_a_configured_header_the_connection_counts_whatever_the_client_sends() {
        let h = headers("x-forwarded-for", "203.0.113.7");
        assert_eq!(address_key(&h, PEER, &config(None, 1)), "10.0.0.9");
    }

    #[test]
    fn the_address_is_taken_as_many_entries_from_the_right_as_there_are_trusted_proxies() {
        // The client wrote "1.1.1.1" itself; our one proxy appended what it saw.
        let h = headers("x-forwarded-for", "1.1.1.1, 203.0.113.7");
        assert_eq!(
            address_key(&h, PEER, &config(Some("x-forwarded-for"), 1)),
            "203.0.113.7"
        );
        let h = headers("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.2");
        assert_eq!(
            address_key(&h, PEER, &config(Some("x-forwarded-for"), 2)),
            "203.0.113.7"
        );
    }

    #[test]
    fn what_is_not_an_address_falls_back_to_the_connection() {
        for value in ["", "unknown", "203.0.113.7; drop table", &"9".repeat(5000)] {
            let h = headers("x-real-ip", value);
            assert_eq!(
                address_key(&h, PEER, &config(Some("x-real-ip"), 1)),
                "10.0.0.9",
                "{value:.20}"
            );
        }
        let h = headers("x-real-ip", "203.0.113.7");
        assert_eq!(
            address_key(&h, PEER, &config(Some("x-real-ip"), 3)),
            "10.0.0.9",
            "too few entries"
        );
    }

    #[test]
    fn ports_are_dropped_and_ipv6_counts_by_its_64() {
        let c = config(Some("x-real-ip"), 1);
        assert_eq!(
            address_key(&headers("x-real-ip", "203.0.113.7:5678"), PEER, &c),
            "203.0.113.7"
        );
        let a = address_key(&headers("x-real-ip", "2001:db8:1:2:aaaa::1"), PEER, &c);
        let b = address_key(
            &headers("x-real-ip", "[2001:db8:1:2:bbbb::2]:443"),
            PEER,
            &c,
        );
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_eq!(
            address_key(&headers("x-real-ip", "::ffff:203.0.113.7"), PEER, &c),
            "203.0.113.7"
        );
    }
}
