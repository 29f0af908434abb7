//! Which cloud and region an address belongs to, from the clouds' published IP range files.
//!
//! Two formats are read, told apart by their fields:
//! - AWS `ip-ranges.json` (<https://docs.aws.amazon.com/vpc/latest/userguide/aws-ip-ranges.html>):
//!   `prefixes[].ip_prefix` and `ipv6_prefixes[].ipv6_prefix`, each with a `region`; cloud `aws`;
//! - Google Cloud `cloud.json` (<https://www.gstatic.com/ipranges/cloud.json>):
//!   `prefixes[].ipv4Prefix` or `ipv6Prefix`, each with a `scope` (the region); cloud `gcp`.
//!
//! Every prefix goes into a prefix trie per address family, and a lookup is a longest-prefix match,
//! so a more specific range wins over a broader one whatever the file order. The same prefix in two
//! places keeps the last one read.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use serde::Deserialize;

use crate::error::ServeError;

/// The cloud name of AWS ranges (and of the `cloud` label of S3 backends).
pub const AWS: &str = "aws";
/// The cloud name of Google Cloud ranges.
pub const GCP: &str = "gcp";

/// A cloud and one of its regions (`aws`, `eu-west-3`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CloudRegion {
    /// `aws` or `gcp`.
    pub cloud: Arc<str>,
    /// The region (AWS `region`, Google `scope`).
    pub region: Arc<str>,
}

/// Address prefixes to cloud regions.
#[derive(Default)]
pub struct RegionMap {
    v4: PrefixMap<Ipv4Net, CloudRegion>,
    v6: PrefixMap<Ipv6Net, CloudRegion>,
    prefixes: usize,
}

impl std::fmt::Debug for RegionMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionMap")
            .field("prefixes", &self.prefixes)
            .finish()
    }
}

impl RegionMap {
    /// An empty map: every address is in no known cloud.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the ranges of a file in either published format.
    pub fn load(&mut self, path: &Path) -> Result<(), ServeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ServeError::io(path.display().to_string(), source))?;
        self.add_json(&text, &path.display().to_string())
    }

    /// Adds the ranges of one file's text; `file_name` names it in errors.
    pub fn add_json(&mut self, text: &str, file_name: &str) -> Result<(), ServeError> {
        let problem = |message: String| ServeError::ranges(file_name, message);
        let file: RangesFile = serde_json::from_str(text)
            .map_err(|error| problem(format!("not an IP range file: {error}")))?;
        let format = file.format().map_err(problem)?;
        let cloud: Arc<str> = Arc::from(match format {
            Format::Aws => AWS,
            Format::Google => GCP,
        });
        let entries = file
            .prefixes
            .iter()
            .enumerate()
            .map(|(index, entry)| (format!("prefixes[{index}]"), entry))
            .chain(
                file.ipv6_prefixes
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(|(index, entry)| (format!("ipv6_prefixes[{index}]"), entry)),
            );
        for (key, entry) in entries {
            let (prefix, region) = entry
                .prefix_and_region(format)
                .map_err(|message| problem(format!("{key}: {message}")))?;
            let location = CloudRegion {
                cloud: Arc::clone(&cloud),
                region: Arc::from(region),
            };
            match prefix.trunc() {
                IpNet::V4(network) => self.v4.insert(network, location),
                IpNet::V6(network) => self.v6.insert(network, location),
            };
            self.prefixes += 1;
        }
        Ok(())
    }

    /// The cloud region of `address` (longest matching prefix), if any.
    pub fn lookup(&self, address: IpAddr) -> Option<&CloudRegion> {
        match address.to_canonical() {
            IpAddr::V4(address) => self
                .v4
                .get_lpm(&Ipv4Net::from(address))
                .map(|(_, location)| location),
            IpAddr::V6(address) => self
                .v6
                .get_lpm(&Ipv6Net::from(address))
                .map(|(_, location)| location),
        }
    }

    /// How many prefixes were read (counting repeats).
    pub fn len(&self) -> usize {
        self.prefixes
    }

    /// Whether no prefix was read.
    pub fn is_empty(&self) -> bool {
        self.prefixes == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Aws,
    Google,
}

/// Both formats at once; which fields are present tells them apart.
#[derive(Debug, Deserialize)]
struct RangesFile {
    prefixes: Vec<Entry>,
    ipv6_prefixes: Option<Vec<Entry>>,
    #[serde(rename = "createDate")]
    create_date: Option<String>,
    #[serde(rename = "creationTime")]
    creation_time: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    // AWS
    ip_prefix: Option<String>,
    ipv6_prefix: Option<String>,
    region: Option<String>,
    // Google
    #[serde(rename = "ipv4Prefix")]
    ipv4_prefix: Option<String>,
    #[serde(rename = "ipv6Prefix")]
    google_ipv6_prefix: Option<String>,
    scope: Option<String>,
}

impl Entry {
    fn is_aws(&self) -> bool {
        self.ip_prefix.is_some() || self.ipv6_prefix.is_some() || self.region.is_some()
    }

    fn is_google(&self) -> bool {
        self.ipv4_prefix.is_some() || self.google_ipv6_prefix.is_some() || self.scope.is_some()
    }

    fn prefix_and_region(&self, format: Format) -> Result<(IpNet, &str), String> {
        let (prefixes, region, fields) = match format {
            Format::Aws => (
                [&self.ip_prefix, &self.ipv6_prefix],
                &self.region,
                "ip_prefix or ipv6_prefix, and region",
            ),
            Format::Google => (
                [&self.ipv4_prefix, &self.google_ipv6_prefix],
                &self.scope,
                "ipv4Prefix or ipv6Prefix, and scope",
            ),
        };
        let prefix = match prefixes {
            [Some(prefix), None] | [None, Some(prefix)] => prefix,
            _ => return Err(format!("expected exactly one of {fields}")),
        };
        let prefix: IpNet = prefix
            .parse()
            .map_err(|_| format!("{prefix:?} is not an IP prefix (address/length)"))?;
        match region.as_deref() {
            Some(region) if !region.is_empty() => Ok((prefix, region)),
            _ => Err(format!("missing region; expected {fields}")),
        }
    }
}

impl RangesFile {
    fn format(&self) -> Result<Format, String> {
        let all = || {
            self.prefixes
                .iter()
                .chain(self.ipv6_prefixes.iter().flatten())
        };
        let aws =
            self.ipv6_prefixes.is_some() || self.create_date.is_some() || all().any(Entry::is_aws);
        let google = self.creation_time.is_some() || all().any(Entry::is_google);
        match (aws, google) {
            (true, false) => Ok(Format::Aws),
            (false, true) => Ok(Format::Google),
            (true, true) => Err("mixes AWS (ip_prefix, region) and Google (ipv4Prefix, scope) fields".to_owned()),
            (false, false) => Err(
                "neither AWS ip-ranges.json (createDate, ip_prefix) nor Google cloud.json (creationTime, ipv4Prefix)"
                    .to_owned(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS_FILE: &str = r#"{
      "syncToken": "1", "createDate": "2026-07-29-08-27-05",
      "prefixes": [
        {"ip_prefix": "35.180.0.0/16", "region": "eu-west-3", "service": "AMAZON", "network_border_group": "eu-west-3"},
        {"ip_prefix": "35.180.1.0/24", "region": "eu-west-1", "service": "EC2", "network_border_group": "eu-west-1"}
      ],
      "ipv6_prefixes": [
        {"ipv6_prefix": "2a05:d012::/40", "region": "eu-west-3", "service": "AMAZON", "network_border_group": "eu-west-3"}
      ]
    }"#;

    const GOOGLE_FILE: &str = r#"{
      "syncToken": "1", "creationTime": "2025-12-12T12:09:37.136146",
      "prefixes": [
        {"ipv4Prefix": "35.220.26.0/24", "service": "Google Cloud", "scope": "asia-east2"},
        {"ipv6Prefix": "2600:1900:4030::/44", "service": "Google Cloud", "scope": "asia-east1"}
      ]
    }"#;

    fn lookup(map: &RegionMap, address: &str) -> Option<(String, String)> {
        map.lookup(address.parse().unwrap())
            .map(|found| (found.cloud.to_string(), found.region.to_string()))
    }

    #[test]
    fn reads_both_formats_and_matches_the_longest_prefix() {
        let mut map = RegionMap::new();
        map.add_json(AWS_FILE, "ip-ranges.json").unwrap();
        map.add_json(GOOGLE_FILE, "cloud.json").unwrap();
        assert_eq!(map.len(), 5);
        let pair = |cloud: &str, region: &str| Some((cloud.to_owned(), region.to_owned()));
        assert_eq!(lookup(&map, "35.180.2.1"), pair("aws", "eu-west-3"));
        assert_eq!(lookup(&map, "35.180.1.1"), pair("aws", "eu-west-1"));
        assert_eq!(lookup(&map, "::ffff:35.180.2.1"), pair("aws", "eu-west-3"));
        assert_eq!(lookup(&map, "2a05:d012::1"), pair("aws", "eu-west-3"));
        assert_eq!(lookup(&map, "35.220.26.1"), pair("gcp", "asia-east2"));
        assert_eq!(lookup(&map, "2600:1900:4030::7"), pair("gcp", "asia-east1"));
        assert_eq!(lookup(&map, "127.0.0.1"), None);
        assert_eq!(lookup(&map, "::1"), None);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for (text, expected) in [
            ("[]", "not an IP range file"),
            (r#"{"prefixes": []}"#, "neither AWS"),
            (
                r#"{"createDate": "x", "prefixes": [{"ip_prefix": "1.2.3.0/24"}]}"#,
                "prefixes[0]: missing region",
            ),
            (
                r#"{"createDate": "x", "prefixes": [{"ip_prefix": "1.2.3/24", "region": "r"}]}"#,
                "is not an IP prefix",
            ),
            (
                r#"{"prefixes": [{"ipv4Prefix": "1.2.3.0/24", "ipv6Prefix": "::/0", "scope": "s"}]}"#,
                "exactly one of",
            ),
            (
                r#"{"prefixes": [{"ipv4Prefix": "1.2.3.0/24", "region": "r"}]}"#,
                "mixes",
            ),
        ] {
            let error = RegionMap::new()
                .add_json(text, "f.json")
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("f.json") && error.contains(expected),
                "{text}: {error}"
            );
        }
    }
}
