//! [`audit`]: proof, without writing, that every destination holds every file with the right
//! bytes. Each destination object is read and hashed (streamed): the sha256 of the manifest is
//! the only thing known about a file, so nothing cheaper proves its content.

use futures::StreamExt as _;
use hoist_object::hash_object;
use serde::Serialize;

use crate::model::{FileManifest, object_url};
use crate::promote::Buckets;

/// What a destination holds for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileStatus {
    /// The right bytes.
    Ok,
    /// No object.
    Missing,
    /// Other bytes.
    Mismatched,
    /// The destination could not be read.
    Error,
}

/// One (file, destination) of an audit.
#[derive(Debug, Clone, Serialize)]
pub struct FileFinding {
    /// The destination filestore's base.
    pub destination_base: String,
    /// The destination object.
    pub destination: String,
    /// The file's name.
    pub name: String,
    /// The manifest's sha256.
    pub sha256: String,
    /// What is there.
    pub status: FileStatus,
    /// The size read (when the object exists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The sha256 of what is there, when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// Why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Checks every (file, destination) of `manifests`, `concurrency` objects at a time. Only reads
/// (`HEAD` and `GET`). Findings come in manifest, file, destination order, each destination
/// object once.
pub async fn audit(
    manifests: &[FileManifest],
    buckets: &Buckets,
    concurrency: usize,
) -> Vec<FileFinding> {
    let mut seen = std::collections::HashSet::new();
    let mut work = Vec::new();
    for manifest in manifests {
        for file in &manifest.files {
            for destination in manifest.destinations() {
                let url = object_url(&destination.url, &file.name);
                if seen.insert(url.clone()) {
                    work.push((destination, file, url));
                }
            }
        }
    }
    futures::stream::iter(work)
        .map(|(destination, file, url)| async move {
            let mut finding = FileFinding {
                destination_base: destination.base.clone(),
                destination: url,
                name: file.name.clone(),
                sha256: file.sha256.hex(),
                status: FileStatus::Error,
                size: None,
                found: None,
                error: None,
            };
            let bucket = match buckets.get(destination) {
                Ok(bucket) => bucket,
                Err(error) => {
                    finding.error = Some(error.to_string());
                    return finding;
                }
            };
            match bucket.object_size(&file.name).await {
                Ok(None) => finding.status = FileStatus::Missing,
                Ok(Some(_)) => match hash_object(bucket.as_ref(), &file.name).await {
                    Ok((size, digest)) => {
                        finding.size = Some(size);
                        if digest == file.sha256 {
                            finding.status = FileStatus::Ok;
                        } else {
                            finding.status = FileStatus::Mismatched;
                            finding.found = Some(digest.hex());
                        }
                    }
                    Err(error) => finding.error = Some(error.to_string()),
                },
                Err(error) => finding.error = Some(error.to_string()),
            }
            finding
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}
