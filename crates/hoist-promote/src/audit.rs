//! Proving, without writing, that every destination and every mirror holds what the manifests
//! promote.
//!
//! One [`AuditRow`] per (image, backend), where a backend is a destination repository or a
//! mirror. A row lists its [`Discrepancy`]s and takes the [`Status`] of the worst:
//!
//! - **missing**: a manifest (the image or a child of its index) is not in the destination, or a
//!   blob is not in the mirror;
//! - **mismatched**: the destination's bytes for a manifest do not hash to its digest, or the
//!   mirror's object has another size (or, with `rehash`, another sha256);
//! - **tag-moved**: a tag the manifests want points at another digest;
//! - **tag-missing**: a tag the manifests want is absent;
//! - **extra-tag**: the destination repository has a tag no manifest promotes there (signature,
//!   attestation and SBOM tags `sha256-<hex>.sig`, which travel with their images, excepted); it
//!   is reported on the row of the digest it points at;
//! - **error**: the backend could not be asked.
//!
//! Manifests are fetched by digest, so the store verifies the bytes hash to it: equal digests are
//! equal bytes. Nothing here writes: only `GET`/`HEAD` requests, and reads of files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use hoist_object::{BlobStatus, audit_blobs};
use hoist_oci::{Digest, Reference, Tag};
use hoist_plan::EdgeSet;
use hoist_store::{StoreError, StoreErrorKind};
use serde::Serialize;

use crate::images::PromotedImage;
use crate::mirrors::Mirror;
use crate::plan::Wanted;
use crate::stores::{Located, Stores};

/// Requests to one repository in flight at once.
const REQUESTS_PER_REPOSITORY: usize = 8;

/// How bad a row is, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    ExtraTag,
    TagMissing,
    TagMoved,
    Missing,
    Mismatched,
    Error,
}

impl Status {
    /// The name printed and serialised (`tag-moved`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::ExtraTag => "extra-tag",
            Status::TagMissing => "tag-missing",
            Status::TagMoved => "tag-moved",
            Status::Missing => "missing",
            Status::Mismatched => "mismatched",
            Status::Error => "error",
        }
    }
}

/// One thing wrong with an (image, backend).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Discrepancy {
    /// The destination lacks this manifest.
    ManifestMissing { digest: Digest },
    /// The destination's bytes for this manifest hash to something else.
    ManifestMismatched { digest: Digest, reason: String },
    /// A wanted tag is absent.
    TagMissing { tag: Tag },
    /// A wanted tag points at `current`.
    TagMoved { tag: Tag, current: Digest },
    /// A tag no manifest promotes to this repository points at this row's digest.
    ExtraTag { tag: Tag },
    /// The mirror lacks this blob.
    BlobMissing { digest: Digest, size: u64 },
    /// The mirror's object has another size.
    BlobSize {
        digest: Digest,
        size: u64,
        found: u64,
    },
    /// The mirror's object has the right size but hashes to `found` (found with `rehash` only).
    BlobHash { digest: Digest, found: Digest },
    /// The backend could not be asked.
    Unreadable { subject: String, reason: String },
}

impl Discrepancy {
    /// The status this discrepancy gives its row.
    pub fn status(&self) -> Status {
        match self {
            Discrepancy::ManifestMissing { .. } | Discrepancy::BlobMissing { .. } => {
                Status::Missing
            }
            Discrepancy::ManifestMismatched { .. }
            | Discrepancy::BlobSize { .. }
            | Discrepancy::BlobHash { .. } => Status::Mismatched,
            Discrepancy::TagMissing { .. } => Status::TagMissing,
            Discrepancy::TagMoved { .. } => Status::TagMoved,
            Discrepancy::ExtraTag { .. } => Status::ExtraTag,
            Discrepancy::Unreadable { .. } => Status::Error,
        }
    }
}

impl std::fmt::Display for Discrepancy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Discrepancy::ManifestMissing { digest } => write!(f, "manifest {digest} missing"),
            Discrepancy::ManifestMismatched { digest, reason } => {
                write!(f, "manifest {digest} mismatched: {reason}")
            }
            Discrepancy::TagMissing { tag } => write!(f, "tag {tag} missing"),
            Discrepancy::TagMoved { tag, current } => {
                write!(f, "tag {tag} moved: it points at {current}")
            }
            Discrepancy::ExtraTag { tag } => write!(f, "extra tag {tag}: no manifest promotes it"),
            Discrepancy::BlobMissing { digest, size } => {
                write!(f, "blob {digest} ({size} bytes) missing")
            }
            Discrepancy::BlobSize {
                digest,
                size,
                found,
            } => write!(f, "blob {digest} has {found} bytes, not {size}"),
            Discrepancy::BlobHash { digest, found } => {
                write!(f, "blob {digest} is corrupt: its bytes hash to {found}")
            }
            Discrepancy::Unreadable { subject, reason } => {
                write!(f, "cannot read {subject}: {reason}")
            }
        }
    }
}

/// Whether a backend is a destination registry or a blob mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    Registry,
    Mirror,
}

/// One (image, backend).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    pub kind: BackendKind,
    /// The destination registry, or the mirror's name.
    pub backend: String,
    /// The repository below the registry (for a mirror: the source image).
    pub image: String,
    pub digest: Digest,
    /// The worst discrepancy's status; `ok` when there are none.
    pub status: Status,
    pub discrepancies: Vec<Discrepancy>,
}

/// What auditing one mirror cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MirrorStatistics {
    pub name: String,
    pub url: String,
    /// Distinct blobs checked, and their bytes.
    pub blobs: u64,
    pub bytes: u64,
    /// Whether every byte was read and hashed.
    pub rehashed: bool,
    pub seconds: f64,
}

/// The registry rows of every destination repository the edges name, sorted by (registry,
/// image, digest). `images` supplies each digest's child manifests (a digest not there is checked
/// alone).
pub async fn audit_registries(
    edges: &EdgeSet,
    stores: &Stores,
    images: &[PromotedImage],
    concurrency: usize,
) -> Vec<AuditRow> {
    let manifests: HashMap<Digest, &[Digest]> = images
        .iter()
        .map(|image| (image.digest, image.measured.manifests.as_slice()))
        .collect();
    let mut per_destination: BTreeMap<u32, Vec<(Digest, Vec<Tag>)>> = BTreeMap::new();
    for wanted in Wanted::collect(edges) {
        let tags = wanted
            .tags
            .iter()
            .map(|&tag| edges.tags[tag as usize].clone())
            .collect();
        per_destination
            .entry(wanted.destination)
            .or_default()
            .push((wanted.digest, tags));
    }
    let manifests = &manifests;
    let rows: Vec<Vec<AuditRow>> = futures::stream::iter(per_destination)
        .map(|(id, wanted)| async move {
            let destination = &edges.destinations[id as usize];
            let registry = destination.registry.to_string();
            let image = destination.image.to_string();
            let located = stores
                .locate(&destination.registry, &destination.image)
                .await;
            let rows = match located {
                Ok(located) => audit_repository(&located, &wanted, manifests).await,
                Err(error) => wanted
                    .iter()
                    .map(|(digest, _)| (*digest, vec![unreadable(&error)]))
                    .collect(),
            };
            rows.into_iter()
                .map(|(digest, discrepancies)| {
                    row(
                        BackendKind::Registry,
                        &registry,
                        &image,
                        digest,
                        discrepancies,
                    )
                })
                .collect::<Vec<_>>()
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut rows: Vec<AuditRow> = rows.into_iter().flatten().collect();
    rows.sort_by(|a, b| (&a.backend, &a.image, a.digest).cmp(&(&b.backend, &b.image, b.digest)));
    rows
}

fn row(
    kind: BackendKind,
    backend: &str,
    image: &str,
    digest: Digest,
    discrepancies: Vec<Discrepancy>,
) -> AuditRow {
    AuditRow {
        kind,
        backend: backend.to_owned(),
        image: image.to_owned(),
        digest,
        status: discrepancies
            .iter()
            .map(Discrepancy::status)
            .max()
            .unwrap_or(Status::Ok),
        discrepancies,
    }
}

fn unreadable(error: &StoreError) -> Discrepancy {
    Discrepancy::Unreadable {
        subject: error.subject().to_owned(),
        reason: error.to_string(),
    }
}

/// The discrepancies of one destination repository, by digest (extra tags on digests the
/// manifests do not promote get rows of their own).
async fn audit_repository(
    located: &Located,
    wanted: &[(Digest, Vec<Tag>)],
    manifests: &HashMap<Digest, &[Digest]>,
) -> BTreeMap<Digest, Vec<Discrepancy>> {
    let mut found: BTreeMap<Digest, Vec<Discrepancy>> = wanted
        .iter()
        .map(|(digest, _)| (*digest, Vec::new()))
        .collect();
    let wanted_tags: BTreeSet<&Tag> = wanted.iter().flat_map(|(_, tags)| tags).collect();
    match resolve_tags(located, &wanted_tags).await {
        Ok(current) => {
            for (digest, tags) in wanted {
                let entry = found
                    .get_mut(digest)
                    .expect("every wanted digest has a row");
                for tag in tags {
                    match current.get(tag) {
                        Some(points) if points == digest => {}
                        Some(points) => entry.push(Discrepancy::TagMoved {
                            tag: tag.clone(),
                            current: *points,
                        }),
                        None => entry.push(Discrepancy::TagMissing { tag: tag.clone() }),
                    }
                }
            }
            for (tag, digest) in current {
                if !wanted_tags.contains(&tag) {
                    found
                        .entry(digest)
                        .or_default()
                        .push(Discrepancy::ExtraTag { tag });
                }
            }
        }
        Err(error) => {
            for discrepancies in found.values_mut() {
                discrepancies.push(unreadable(&error));
            }
        }
    }
    // Every manifest of every wanted image, fetched by digest (which verifies the bytes).
    let to_fetch: Vec<(Digest, Digest)> = wanted
        .iter()
        .flat_map(|(digest, _)| {
            let children = manifests
                .get(digest)
                .copied()
                .unwrap_or(std::slice::from_ref(digest));
            children.iter().map(move |manifest| (*digest, *manifest))
        })
        .collect();
    let fetched: Vec<(Digest, Option<Discrepancy>)> = futures::stream::iter(to_fetch)
        .map(|(image, manifest)| async move {
            let result = located
                .store
                .fetch_manifest(&located.repository, &Reference::Digest(manifest))
                .await;
            let discrepancy = match result {
                Ok(Some(_)) => None,
                Ok(None) => Some(Discrepancy::ManifestMissing { digest: manifest }),
                Err(error) if error.kind() == StoreErrorKind::DigestMismatch => {
                    Some(Discrepancy::ManifestMismatched {
                        digest: manifest,
                        reason: error.to_string(),
                    })
                }
                Err(error) => Some(unreadable(&error)),
            };
            (image, discrepancy)
        })
        .buffered(REQUESTS_PER_REPOSITORY)
        .collect()
        .await;
    for (image, discrepancy) in fetched {
        if let Some(discrepancy) = discrepancy {
            found.entry(image).or_default().push(discrepancy);
        }
    }
    found
}

/// Every tag of the repository that matters (wanted, or not a signature-like tag) with its digest.
async fn resolve_tags(
    located: &Located,
    wanted: &BTreeSet<&Tag>,
) -> Result<BTreeMap<Tag, Digest>, StoreError> {
    let store = &located.store;
    let repository = located.repository.as_str();
    let listing = store.list_tags_with_digests(repository).await?;
    let relevant = |tag: &Tag| wanted.contains(tag) || !travels_with_an_image(tag);
    if let Some(digests) = listing.digests {
        return Ok(digests
            .into_iter()
            .filter(|(tag, _)| relevant(tag))
            .collect());
    }
    let to_head: Vec<Tag> = listing
        .tags
        .into_iter()
        .filter(|tag| relevant(tag))
        .collect();
    let heads: Vec<Result<Option<(Tag, Digest)>, StoreError>> = futures::stream::iter(to_head)
        .map(|tag| async move {
            let head = store
                .head_manifest(repository, &Reference::Tag(tag.clone()))
                .await?;
            Ok(head.map(|head| (tag, head.digest)))
        })
        .buffered(REQUESTS_PER_REPOSITORY)
        .collect()
        .await;
    let mut resolved = BTreeMap::new();
    for head in heads {
        // A tag deleted between the listing and the HEAD is simply not there.
        if let Some((tag, digest)) = head? {
            resolved.insert(tag, digest);
        }
    }
    Ok(resolved)
}

/// `sha256-<64 hex>` with an optional `.suffix`: cosign signatures, attestations and SBOMs, which
/// promotions copy along with the image they name.
fn travels_with_an_image(tag: &Tag) -> bool {
    let Some(rest) = tag.as_str().strip_prefix("sha256-") else {
        return false;
    };
    let hex = rest.split_once('.').map_or(rest, |(hex, _)| hex);
    hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The mirror rows: every promoted image in every mirror, sorted by (mirror, image, digest), and
/// what each mirror's check cost. Blobs shared by images are checked once per mirror.
pub async fn audit_mirrors(
    images: &[PromotedImage],
    mirrors: &[Mirror],
    rehash: bool,
    concurrency: usize,
) -> (Vec<AuditRow>, Vec<MirrorStatistics>) {
    let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    for image in images {
        blobs.extend(image.measured.blobs.iter().copied());
    }
    let blobs: Vec<(Digest, u64)> = blobs.into_iter().collect();
    let blobs = &blobs;
    let audits = futures::future::join_all(mirrors.iter().map(|mirror| async move {
        let started = Instant::now();
        let findings = audit_blobs(mirror.mirror.as_ref(), blobs, rehash, concurrency).await;
        let seconds = started
            .elapsed()
            .max(Duration::from_micros(1))
            .as_secs_f64();
        let statistics = MirrorStatistics {
            name: mirror.name.clone(),
            url: mirror.url.clone(),
            blobs: blobs.len() as u64,
            bytes: blobs.iter().map(|(_, size)| size).sum(),
            rehashed: rehash,
            seconds,
        };
        (mirror, findings, statistics)
    }))
    .await;
    let mut rows = Vec::new();
    let mut statistics = Vec::new();
    for (mirror, findings, cost) in audits {
        let by_digest: HashMap<Digest, BlobStatus> = findings
            .into_iter()
            .map(|finding| (finding.digest, finding.status))
            .collect();
        for image in images {
            let discrepancies = image
                .measured
                .blobs
                .iter()
                .filter_map(|&(digest, size)| {
                    blob_discrepancy(mirror, digest, size, &by_digest[&digest])
                })
                .collect();
            rows.push(row(
                BackendKind::Mirror,
                &mirror.name,
                image.source.image.as_str(),
                image.digest,
                discrepancies,
            ));
        }
        statistics.push(cost);
    }
    rows.sort_by(|a, b| (&a.backend, &a.image, a.digest).cmp(&(&b.backend, &b.image, b.digest)));
    (rows, statistics)
}

fn blob_discrepancy(
    mirror: &Mirror,
    digest: Digest,
    size: u64,
    status: &BlobStatus,
) -> Option<Discrepancy> {
    Some(match status {
        BlobStatus::Ok => return None,
        BlobStatus::Missing => Discrepancy::BlobMissing { digest, size },
        BlobStatus::SizeMismatch { found } => Discrepancy::BlobSize {
            digest,
            size,
            found: *found,
        },
        BlobStatus::HashMismatch { found } => Discrepancy::BlobHash {
            digest,
            found: *found,
        },
        BlobStatus::Error { message, .. } => Discrepancy::Unreadable {
            subject: format!("{} {digest}", mirror.url),
            reason: message.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_tags_travel_with_their_images() {
        let hex = "a".repeat(64);
        for tag in [
            format!("sha256-{hex}.sig"),
            format!("sha256-{hex}.att"),
            format!("sha256-{hex}"),
        ] {
            assert!(travels_with_an_image(&Tag::parse(&tag).unwrap()), "{tag}");
        }
        for tag in ["v1.0", "sha256-abc.sig", "latest"] {
            assert!(!travels_with_an_image(&Tag::parse(tag).unwrap()), "{tag}");
        }
    }

    #[test]
    fn a_row_takes_the_status_of_its_worst_discrepancy() {
        let digest = Digest::from_sha256([1; 32]);
        let tag = Tag::parse("v1").unwrap();
        let row = row(
            BackendKind::Registry,
            "r",
            "i",
            digest,
            vec![
                Discrepancy::ExtraTag { tag: tag.clone() },
                Discrepancy::TagMoved {
                    tag,
                    current: digest,
                },
            ],
        );
        assert_eq!(row.status, Status::TagMoved);
        assert_eq!(
            super::row(BackendKind::Mirror, "m", "i", digest, Vec::new()).status,
            Status::Ok
        );
    }
}
