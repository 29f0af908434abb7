//! The published IP range formats, read from real-format extracts in `tests/fixtures/ip-ranges`.

use hoist_serve::RegionMap;

use crate::rules::cloud_regions;
use crate::support::fixtures;

fn lookup(regions: &RegionMap, address: &str) -> Option<String> {
    regions
        .lookup(address.parse().unwrap())
        .map(|found| format!("{}/{}", found.cloud, found.region))
}

#[test]
fn published_formats() {
    let regions = cloud_regions();
    for (address, expected) in [
        ("35.180.1.1", Some("aws/eu-west-3")),
        ("3.5.100.7", Some("aws/us-east-2")),
        // A prefix listed once per service is one range.
        ("52.5.1.1", Some("aws/us-east-1")),
        // Local zones keep their parent region.
        ("15.181.232.1", Some("aws/us-east-1")),
        ("23.228.249.1", Some("aws/GLOBAL")),
        ("2a05:d018:548:fb00::1", Some("aws/eu-west-1")),
        ("35.220.27.1", Some("gcp/asia-east2")),
        ("35.220.200.1", Some("gcp/asia-east2")),
        ("34.81.0.1", Some("gcp/asia-east1")),
        ("2600:1900:4050::9", Some("gcp/asia-northeast1")),
        ("::ffff:34.84.1.1", Some("gcp/asia-northeast1")),
        ("127.0.0.1", None),
        ("8.8.8.8", None),
        ("::1", None),
    ] {
        assert_eq!(lookup(&regions, address).as_deref(), expected, "{address}");
    }
    assert_eq!(regions.len(), 17);
}

#[test]
fn a_missing_file_is_named() {
    let error = RegionMap::new()
        .load(&fixtures().join("ip-ranges/nope.json"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("nope.json"), "{error}");
}
