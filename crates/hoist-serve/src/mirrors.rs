//! The blob mirrors a client can be sent to, from hoist's backends catalogue.
//!
//! A backend's labels `cloud` and `region` say whose clients it serves: a client that the IP
//! ranges place in (`aws`, `eu-west-3`) goes to the backend labelled `cloud: aws, region:
//! eu-west-3` (or, failing that, to one labelled with that region and no cloud); everyone else
//! goes to the default backend. Two backends claiming the same cloud and region are refused:
//! `--select` picks one.
//!
//! Where a blob is, as a URL a client can `GET` anonymously (the buckets are public-read):
//! - `s3://bucket/prefix`: `https://bucket.s3.dualstack.REGION.amazonaws.com/prefix/…` (the form
//!   registry.k8s.io uses), or with an `endpoint`, `ENDPOINT/bucket/prefix/…` (`pathStyle`) or
//!   `SCHEME://bucket.HOST/prefix/…`;
//! - `gs://bucket/prefix`: `https://storage.googleapis.com/bucket/prefix/…`, or `ENDPOINT/bucket/…`;
//! - `file:DIR`: hoist serves the directory itself, under `/_hoist/mirrors/NAME/…`.
//!
//! and `…` is `containers/images/<digest>`, the layout hoist mirrors into.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hoist_object::{Backend, BackendUrl};

use crate::error::ServeError;
use crate::paths::encode_path;
use crate::ranges::CloudRegion;

/// Where hoist serves the blobs of `file:` backends: `/_hoist/mirrors/<backend>/containers/images/<digest>`.
pub const FILE_MIRROR_PATH: &str = "/_hoist/mirrors/";

/// How a mirror is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorTarget {
    /// A bucket reached over HTTP(S): blob URLs are `base/containers/images/<digest>`.
    Http {
        /// Scheme, host and bucket (and prefix), without a trailing `/`.
        base: String,
    },
    /// A directory hoist serves itself.
    File {
        /// The directory (holding `containers/images/`).
        root: PathBuf,
    },
}

/// One backend as a redirect target.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// The backend's name in the catalogue.
    pub name: Arc<str>,
    /// How to reach it.
    pub target: MirrorTarget,
}

impl Mirror {
    /// From a catalogue entry.
    pub fn from_backend(backend: &Backend) -> Result<Self, ServeError> {
        let target = match &backend.url {
            BackendUrl::File { path } => MirrorTarget::File { root: path.clone() },
            BackendUrl::S3 { bucket, prefix } => MirrorTarget::Http {
                base: with_prefix(s3_base(backend, bucket)?, prefix),
            },
            BackendUrl::Gcs { bucket, prefix } => {
                let endpoint = backend
                    .options
                    .endpoint
                    .as_deref()
                    .unwrap_or("https://storage.googleapis.com");
                MirrorTarget::Http {
                    base: with_prefix(format!("{endpoint}/{bucket}"), prefix),
                }
            }
        };
        Ok(Self {
            name: Arc::from(backend.name.as_str()),
            target,
        })
    }

    /// The blob's URL for a bucket; for a file mirror, its path under hoist's own `origin`
    /// (`http://host:port`).
    pub fn blob_location(&self, digest: &str, origin: &str) -> String {
        match &self.target {
            MirrorTarget::Http { base } => format!("{base}/containers/images/{digest}"),
            MirrorTarget::File { .. } => format!(
                "{origin}{FILE_MIRROR_PATH}{}/containers/images/{digest}",
                encode_path(&self.name)
            ),
        }
    }

    /// The file of a blob in a file mirror (`digest` must have been matched as one: no `/`).
    pub fn blob_file(root: &Path, digest: &str) -> PathBuf {
        root.join("containers").join("images").join(digest)
    }
}

fn s3_base(backend: &Backend, bucket: &str) -> Result<String, ServeError> {
    let options = &backend.options;
    Ok(match (&options.endpoint, options.path_style) {
        (Some(endpoint), true) => format!("{endpoint}/{bucket}"),
        (Some(endpoint), false) => {
            let url = url::Url::parse(endpoint).map_err(|error| {
                ServeError::config(format!("backend {}", backend.name), error.to_string())
            })?;
            let host = url.host_str().unwrap_or_default();
            match url.port() {
                Some(port) => format!("{}://{bucket}.{host}:{port}", url.scheme()),
                None => format!("{}://{bucket}.{host}", url.scheme()),
            }
        }
        (None, _) => match &options.region {
            Some(region) => format!("https://{bucket}.s3.dualstack.{region}.amazonaws.com"),
            None => format!("https://{bucket}.s3.amazonaws.com"),
        },
    })
}

fn with_prefix(base: String, prefix: &str) -> String {
    if prefix.is_empty() {
        base
    } else {
        format!("{base}/{}", encode_path(prefix))
    }
}

/// The mirrors, by the cloud region they serve, and the default one.
#[derive(Debug, Default)]
pub struct Mirrors {
    mirrors: Vec<Mirror>,
    by_cloud_region: HashMap<(Arc<str>, Arc<str>), usize>,
    by_region: HashMap<Arc<str>, usize>,
    default: Option<usize>,
}

impl Mirrors {
    /// No mirrors: every blob goes to the upstream.
    pub fn none() -> Self {
        Self::default()
    }

    /// The given backends (already selected); `default` names the one for clients of no known
    /// region (default: the first backend).
    pub fn new(backends: &[&Backend], default: Option<&str>) -> Result<Self, ServeError> {
        let mut mirrors = Self::default();
        for (index, backend) in backends.iter().enumerate() {
            mirrors.mirrors.push(Mirror::from_backend(backend)?);
            let Some(region) = backend.labels.get("region") else {
                continue;
            };
            let region: Arc<str> = Arc::from(region.as_str());
            let (claimed, what) = match backend.labels.get("cloud") {
                Some(cloud) => {
                    let key = (Arc::from(cloud.as_str()), Arc::clone(&region));
                    let what = format!("cloud={cloud},region={region}");
                    (mirrors.by_cloud_region.insert(key, index), what)
                }
                None => (
                    mirrors.by_region.insert(Arc::clone(&region), index),
                    format!("region={region} (no cloud label)"),
                ),
            };
            if let Some(first) = claimed {
                return Err(ServeError::config(
                    format!("backend {}", backend.name),
                    format!(
                        "serves {what}, like backend {}: choose one with --select",
                        backends[first].name
                    ),
                ));
            }
        }
        mirrors.default = match default {
            Some(name) => Some(
                backends
                    .iter()
                    .position(|backend| backend.name == name)
                    .ok_or_else(|| {
                        ServeError::config(
                            "--default-backend",
                            format!("no selected backend is called {name:?}"),
                        )
                    })?,
            ),
            None if backends.is_empty() => None,
            None => Some(0),
        };
        Ok(mirrors)
    }

    /// The mirror for a client in `location` (`None`: no known cloud region), if any.
    pub fn for_client(&self, location: Option<&CloudRegion>) -> Option<(usize, &Mirror)> {
        let index = location
            .and_then(|location| {
                self.by_cloud_region
                    .get(&(Arc::clone(&location.cloud), Arc::clone(&location.region)))
                    .or_else(|| self.by_region.get(&location.region))
            })
            .copied()
            .or(self.default)?;
        Some((index, &self.mirrors[index]))
    }

    /// The file mirror called `name`, if there is one.
    pub fn file_root(&self, name: &str) -> Option<&Path> {
        self.mirrors
            .iter()
            .find(|mirror| &*mirror.name == name)
            .and_then(|mirror| match &mirror.target {
                MirrorTarget::File { root } => Some(root.as_path()),
                MirrorTarget::Http { .. } => None,
            })
    }

    /// All mirrors, in catalogue order.
    pub fn all(&self) -> &[Mirror] {
        &self.mirrors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_object::Catalogue;

    const CATALOGUE: &str = "backends:
- name: aws-eu-west-3
  url: s3://prod-registry-k8s-io-eu-west-3
  region: eu-west-3
  labels: {cloud: aws, region: eu-west-3}
- name: aws-us-east-2
  url: s3://prod-registry-k8s-io-us-east-2/some/prefix
  region: us-east-2
  labels: {cloud: aws, region: us-east-2}
- name: local
  url: s3://bucket
  endpoint: http://127.0.0.1:9000
  pathStyle: true
  labels: {region: lab}
- name: virtual
  url: s3://bucket
  endpoint: http://s3.example:9000
- name: gcs
  url: gs://k8s-artifacts-prod/p
- name: disk
  url: file:mirror
";

    fn catalogue() -> Catalogue {
        Catalogue::from_str(CATALOGUE, "backends.yaml").unwrap()
    }

    fn location(cloud: &str, region: &str) -> CloudRegion {
        CloudRegion {
            cloud: Arc::from(cloud),
            region: Arc::from(region),
        }
    }

    #[test]
    fn blob_urls() {
        let catalogue = catalogue();
        let digest = "sha256:da86e6ba6ca197bf6bc5e9d900febd906b133eaa4750e6bed647b0fbe50ed43e";
        let url = |name: &str| {
            Mirror::from_backend(catalogue.get(name).unwrap())
                .unwrap()
                .blob_location(digest, "http://127.0.0.1:8080")
        };
        assert_eq!(
            url("aws-eu-west-3"),
            format!(
                "https://prod-registry-k8s-io-eu-west-3.s3.dualstack.eu-west-3.amazonaws.com/containers/images/{digest}"
            )
        );
        assert_eq!(
            url("aws-us-east-2"),
            format!(
                "https://prod-registry-k8s-io-us-east-2.s3.dualstack.us-east-2.amazonaws.com/some/prefix/containers/images/{digest}"
            )
        );
        assert_eq!(
            url("local"),
            format!("http://127.0.0.1:9000/bucket/containers/images/{digest}")
        );
        assert_eq!(
            url("virtual"),
            format!("http://bucket.s3.example:9000/containers/images/{digest}")
        );
        assert_eq!(
            url("gcs"),
            format!(
                "https://storage.googleapis.com/k8s-artifacts-prod/p/containers/images/{digest}"
            )
        );
        assert_eq!(
            url("disk"),
            format!("http://127.0.0.1:8080/_hoist/mirrors/disk/containers/images/{digest}")
        );
    }

    #[test]
    fn clients_get_the_mirror_of_their_region_else_the_default() {
        let catalogue = catalogue();
        let all: Vec<&Backend> = catalogue.backends.iter().collect();
        let mirrors = Mirrors::new(&all, Some("aws-us-east-2")).unwrap();
        let name = |location: Option<&CloudRegion>| {
            mirrors
                .for_client(location)
                .map(|(_, mirror)| mirror.name.to_string())
        };
        assert_eq!(
            name(Some(&location("aws", "eu-west-3"))).as_deref(),
            Some("aws-eu-west-3")
        );
        assert_eq!(
            name(Some(&location("aws", "eu-west-2"))).as_deref(),
            Some("aws-us-east-2")
        );
        assert_eq!(
            name(Some(&location("gcp", "eu-west-3"))).as_deref(),
            Some("aws-us-east-2")
        );
        assert_eq!(
            name(Some(&location("gcp", "lab"))).as_deref(),
            Some("local")
        );
        assert_eq!(name(None).as_deref(), Some("aws-us-east-2"));
        assert_eq!(
            Mirrors::new(&all, None)
                .unwrap()
                .for_client(None)
                .unwrap()
                .0,
            0
        );
        assert!(Mirrors::none().for_client(None).is_none());
        assert_eq!(mirrors.file_root("disk"), Some(Path::new("mirror")));
        assert_eq!(mirrors.file_root("local"), None);
        let error = Mirrors::new(&all, Some("nope")).unwrap_err().to_string();
        assert!(error.contains("--default-backend"), "{error}");
    }

    #[test]
    fn one_mirror_per_region() {
        let catalogue = Catalogue::from_str(
            "backends:
- {name: a, url: 'file:a', labels: {cloud: aws, region: r}}
- {name: b, url: 'file:b', labels: {cloud: aws, region: r}}
",
            "backends.yaml",
        )
        .unwrap();
        let all: Vec<&Backend> = catalogue.backends.iter().collect();
        let error = Mirrors::new(&all, None).unwrap_err().to_string();
        assert!(
            error.contains("backend b") && error.contains("--select"),
            "{error}"
        );
    }
}
