//! `hoist snapshot`: what a repository holds, in the images.yaml format, so it can seed a manifest.

use std::io::Write as _;

use anyhow::Context as _;
use hoist_manifest::snapshot::Snapshot;
use hoist_oci::{Digest, Reference, RegistryName, RepositoryPath, Tag};
use hoist_promote::Stores;

use crate::cli::{SnapshotArgs, SnapshotFormat};
use crate::exit::Outcome;
use crate::registries;

pub fn run(args: &SnapshotArgs) -> anyhow::Result<Outcome> {
    let (registry, image) = split(&args.repository, args.registry.as_deref())?;
    let stores = Stores::new(registries::config(&args.registries)?);
    let runtime = registries::runtime()?;
    let result = runtime.block_on(read(&stores, &registry, &image, args.all_tags));
    let snapshot = match result {
        Ok(Some(snapshot)) => snapshot,
        Ok(None) => {
            // A typo must not look like an empty repository.
            eprintln!(
                "hoist: error: {registry}/{image}: no such repository ({} says it does not exist)",
                if registry.as_str().starts_with("oci:") {
                    "the layout has no index.json: the directory"
                } else {
                    "the registry"
                }
            );
            return Ok(Outcome::Refused);
        }
        Err(error) => {
            eprintln!("hoist: error: cannot read {registry}/{image}: {error}");
            return Ok(Outcome::Partial);
        }
    };
    let text = match args.output {
        SnapshotFormat::Yaml => snapshot.to_yaml(),
        SnapshotFormat::Csv => snapshot.to_csv(),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(Outcome::Ok)
}

/// Splits `REGISTRY/IMAGE` at `registry` when given, else at the last '/'.
fn split(
    repository: &str,
    registry: Option<&str>,
) -> anyhow::Result<(RegistryName, RepositoryPath)> {
    let (registry, image) = match registry {
        Some(registry) => {
            let registry = registry.trim_end_matches('/');
            let image = repository
                .strip_prefix(registry)
                .and_then(|rest| rest.strip_prefix('/'))
                .with_context(|| {
                    format!("{repository} does not lie below --registry {registry}")
                })?;
            (registry, image)
        }
        None => repository
            .rsplit_once('/')
            .with_context(|| format!("{repository} is not REGISTRY/IMAGE"))?,
    };
    let registry = RegistryName::parse(registry)
        .with_context(|| format!("{registry} is not a registry name"))?;
    let image =
        RepositoryPath::parse(image).with_context(|| format!("{image} is not an image name"))?;
    Ok((registry, image))
}

/// Whether a tag is a cosign artifact or referrers fallback tag (`sha256-<hex>[.sig|.att|.sbom]`).
fn is_attached(tag: &Tag) -> bool {
    let Some(rest) = tag.as_str().strip_prefix("sha256-") else {
        return false;
    };
    let hex = rest.split('.').next().unwrap_or_default();
    hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit())
}

async fn read(
    stores: &Stores,
    registry: &RegistryName,
    image: &RepositoryPath,
    all_tags: bool,
) -> Result<Option<Snapshot>, hoist_store::StoreError> {
    use futures::{StreamExt as _, TryStreamExt as _};
    let located = stores.locate(registry, image).await?;
    let (store, repository) = (&located.store, located.repository.as_str());
    let listing = store.list_tags_with_digests(repository).await?;
    if listing.missing {
        return Ok(None);
    }
    let tags: Vec<Tag> = listing
        .tags
        .into_iter()
        .filter(|tag| all_tags || !is_attached(tag))
        .collect();
    let pairs: Vec<(Tag, Option<Digest>)> = match listing.digests {
        Some(digests) => tags
            .into_iter()
            .map(|tag| {
                let digest = digests.get(&tag).copied();
                (tag, digest)
            })
            .collect(),
        None => {
            futures::stream::iter(tags)
                .map(|tag| async move {
                    let head = store
                        .head_manifest(repository, &Reference::Tag(tag.clone()))
                        .await?;
                    Ok::<_, hoist_store::StoreError>((tag, head.map(|head| head.digest)))
                })
                .buffered(8)
                .try_collect()
                .await?
        }
    };
    let mut snapshot = Snapshot::new();
    for (tag, digest) in pairs {
        // A tag deleted between the listing and its HEAD is simply not there any more.
        if let Some(digest) = digest {
            snapshot.insert(image.clone(), digest, [tag]);
        }
    }
    Ok(Some(snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_last_slash_or_at_the_registry() {
        let (registry, image) = split("gcr.io/k8s-staging-foo/bar", None).unwrap();
        assert_eq!(
            (registry.as_str(), image.as_str()),
            ("gcr.io/k8s-staging-foo", "bar")
        );
        let (registry, image) = split(
            "gcr.io/k8s-staging-foo/bar/baz",
            Some("gcr.io/k8s-staging-foo"),
        )
        .unwrap();
        assert_eq!(
            (registry.as_str(), image.as_str()),
            ("gcr.io/k8s-staging-foo", "bar/baz")
        );
        assert!(split("gcr.io/other/bar", Some("gcr.io/k8s-staging-foo")).is_err());
        assert!(split("bar", None).is_err());
    }

    #[test]
    fn cosign_tags_are_attached_artifacts() {
        let hex = "a".repeat(64);
        for name in [
            format!("sha256-{hex}.sig"),
            format!("sha256-{hex}.att"),
            format!("sha256-{hex}"),
        ] {
            assert!(is_attached(&Tag::parse(&name).unwrap()), "{name}");
        }
        for name in ["v1.0", "sha256-abc.sig", "latest"] {
            assert!(!is_attached(&Tag::parse(name).unwrap()), "{name}");
        }
    }
}
