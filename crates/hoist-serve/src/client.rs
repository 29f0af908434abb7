//! Who the client is: its address, and from it its cloud and region.
//!
//! Behind a load balancer the peer is the balancer, and the client is in `X-Forwarded-For`. A
//! Google Cloud load balancer appends `<client-ip>,<load-balancer-ip>` to whatever the client sent
//! (<https://cloud.google.com/load-balancing/docs/https#x-forwarded-for_header>), so the client is
//! the second-to-last entry; entries before it are the client's own words and never trusted.
//! The header is read only when the peer is a configured trusted load balancer: anyone else could
//! write any address there and pick their bucket.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// Why the client address could not be told (the request gets a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddressError(pub String);

impl std::fmt::Display for ClientAddressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The peers whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// Trust the load balancers in `networks` (an address is a `/32` or `/128`); none when empty.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self {
            networks: networks
                .into_iter()
                .map(|network| network.trunc())
                .collect(),
        }
    }

    /// Whether any load balancer is trusted at all.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `peer` is a trusted load balancer.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.networks.iter().any(|network| network.contains(&peer))
    }
}

/// The client's address: the second-to-last `X-Forwarded-For` entry when the peer is a trusted
/// load balancer and sent one (the only entry when there is just one, as Cloud Run's own frontend
/// sends), else the peer address. `peer` is `None` when the server could not tell it.
pub fn client_address(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Result<IpAddr, ClientAddressError> {
    let peer = peer.ok_or_else(|| ClientAddressError("the peer address is unknown".to_owned()))?;
    let peer_ip = peer.ip().to_canonical();
    if trusted.is_empty() || !trusted.trusts(peer_ip) {
        return Ok(peer_ip);
    }
    // Several header lines are one comma-separated list (RFC 9110, section 5.3).
    let mut forwarded = String::new();
    for value in headers.get_all("x-forwarded-for") {
        let text = value.to_str().map_err(|_| {
            ClientAddressError("invalid X-Forwarded-For value: not ASCII text".to_owned())
        })?;
        if !forwarded.is_empty() {
            forwarded.push(',');
        }
        forwarded.push_str(text);
    }
    if forwarded.is_empty() {
        return Ok(peer_ip);
    }
    let entries: Vec<&str> = forwarded
        .split([',', ' '])
        .filter(|entry| !entry.is_empty())
        .collect();
    let chosen = match entries.as_slice() {
        [] => None,
        [only] => Some(*only),
        [.., client, _balancer] => Some(*client),
    };
    chosen
        .and_then(|entry| entry.parse::<IpAddr>().ok())
        .map(|address| address.to_canonical())
        .ok_or_else(|| ClientAddressError(format!("invalid X-Forwarded-For value: {forwarded}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    fn peer(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn untrusted_peers_are_the_client() {
        let none = TrustedProxies::default();
        assert_eq!(
            client_address(
                peer("35.180.1.1:888"),
                &headers(&["1.2.3.4, 5.6.7.8"]),
                &none
            ),
            Ok("35.180.1.1".parse().unwrap())
        );
        let other = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(
            client_address(peer("127.0.0.1:1"), &headers(&["1.2.3.4, 5.6.7.8"]), &other),
            Ok("127.0.0.1".parse().unwrap())
        );
        assert!(client_address(None, &HeaderMap::new(), &none).is_err());
    }

    #[test]
    fn trusted_balancers_forward_the_client() {
        let trusted = TrustedProxies::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let cases: &[(&[&str], Result<&str, ()>)] = &[
            (&[], Ok("127.0.0.1")),
            (&["35.180.1.1,130.211.0.1"], Ok("35.180.1.1")),
            (&["9.9.9.9, 35.180.1.1, 130.211.0.1"], Ok("35.180.1.1")),
            (&["9.9.9.9", "35.180.1.1, 130.211.0.1"], Ok("35.180.1.1")),
            (&["35.180.1.1"], Ok("35.180.1.1")),
            (&["2600:1900:4030::1, 130.211.0.1"], Ok("2600:1900:4030::1")),
            (&["::ffff:35.180.1.1, 130.211.0.1"], Ok("35.180.1.1")),
            (&[" , "], Err(())),
            (&["not-an-ip, 130.211.0.1"], Err(())),
            (&["35.180.1.1:80, 130.211.0.1"], Err(())),
        ];
        for (values, expected) in cases {
            let got = client_address(peer("127.0.0.1:40000"), &headers(values), &trusted);
            match expected {
                Ok(address) => assert_eq!(got, Ok(address.parse().unwrap()), "{values:?}"),
                Err(()) => assert!(got.is_err(), "{values:?} gave {got:?}"),
            }
        }
    }

    #[test]
    fn mapped_peers_are_canonical() {
        let trusted = TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(trusted.trusts("::ffff:127.0.0.1".parse().unwrap()));
        assert_eq!(
            client_address(peer("[::ffff:35.180.1.1]:1"), &HeaderMap::new(), &trusted),
            Ok("35.180.1.1".parse().unwrap())
        );
    }
}
