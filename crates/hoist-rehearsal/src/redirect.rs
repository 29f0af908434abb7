//! The rehearsal itself: every promotion edge redirected into the local registry, and the rule
//! for when that registry may be spoken to without TLS.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use hoist_oci::RegistryName;
use hoist_plan::{Destination, Edge, EdgeSet};

/// The edges of a rehearsal: each edge's image goes to `<registry>/<image>` (the image name as
/// the manifest writes it) instead of its destinations. Origins and tags are unchanged, so the
/// same checks and the same plan apply; edges that become equal (one image promoted to several
/// registries) are kept once, in their first order.
pub fn redirect(edges: &EdgeSet, registry: &RegistryName) -> EdgeSet {
    let mut destinations: Vec<Destination> = Vec::new();
    let mut ids: HashMap<Destination, u32> = HashMap::new();
    let mut seen: HashSet<Edge> = HashSet::new();
    let mut redirected = Vec::with_capacity(edges.edges.len());
    for edge in &edges.edges {
        let destination = Destination {
            registry: registry.clone(),
            image: edges.origin(edge).image.clone(),
        };
        let next = destinations.len() as u32;
        let id = *ids.entry(destination.clone()).or_insert_with(|| {
            destinations.push(destination);
            next
        });
        let edge = Edge {
            destination: id,
            ..*edge
        };
        if seen.insert(edge) {
            redirected.push(edge);
        }
    }
    EdgeSet {
        origins: edges.origins.clone(),
        destinations,
        tags: edges.tags.clone(),
        edges: redirected,
    }
}

/// Whether `host` (`HOST[:PORT]`) names this machine by itself: a loopback address
/// (`127.0.0.0/8`, `::1`), `localhost`, or a name under `.localhost` (RFC 6761 reserves them
/// for loopback). Only such a registry is spoken to over plain HTTP in a rehearsal; callers
/// should also check where a name resolves.
pub fn is_loopback_host(host: &str) -> bool {
    let name = strip_port(host);
    let name = name
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(name);
    if let Ok(address) = name.parse::<IpAddr>() {
        return address.is_loopback();
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// `host` without its `:PORT` (IPv6 literals keep their brackets).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_is_loopback() {
        for host in [
            "localhost",
            "localhost:5001",
            "LOCALHOST:5001",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "::1",
            "k3d-registry.localhost:12345",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "kind-registry:5000",
            "192.168.49.2:5000",
            "registry.example.com",
            "localhost.example.com:5000",
            "notlocalhost:5000",
            "10.0.0.1",
            "[2001:db8::1]:5000",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
