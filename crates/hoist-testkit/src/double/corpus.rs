//! A thin manifest tree the registry double can serve "already promoted": [`twin_corpus`].
//!
//! The double must answer `GET` by digest with bytes that hash to the digest (hoist verifies
//! every manifest it reads), and nobody has the bytes behind the real corpus's digests. So the
//! tree is copied with every digest replaced by the digest of a small synthetic image manifest
//! (its *twin*) whose config descriptor names the original digest. Names, tags, registries, line
//! and column of every entry stay as they were: only the 64 hex digits of each digest change.
//! Projects the loader refuses (the real corpus has a few) are left out, so the copy promotes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use hoist_manifest::{Input, Manifest, Severity};
use hoist_oci::{Digest, media_types};

use super::population::Population;
use crate::error::{Error, Result};

/// What [`twin_corpus`] wrote and what the double should hold.
#[derive(Debug, Clone)]
pub struct TwinCorpus {
    /// Every manifest of the copy, at its source and at every destination, with its tags.
    pub population: Population,
    /// Projects copied.
    pub projects: Vec<String>,
    /// Projects left out, each with the first error the loader gave.
    pub dropped: Vec<(String, String)>,
    /// Original digest -> twin digest.
    pub twins: BTreeMap<Digest, Digest>,
    /// The source repositories (`HOST/PATH` of each image at its `src: true` registry); every
    /// other repository of the population is a destination.
    pub sources: BTreeSet<String>,
}

/// One (repository, digest) taken out of a population, with the tags that pointed at it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Removed {
    /// `HOST/PATH`.
    pub repository: String,
    /// The manifest.
    pub digest: Digest,
    /// Its tags there, sorted.
    pub tags: Vec<String>,
}

/// The synthetic image manifest standing for `original`: an OCI image manifest whose config is
/// `original` and whose one layer is derived from it, with sizes derived from its bytes.
pub fn twin_manifest(original: &Digest) -> Vec<u8> {
    let bytes = original.as_bytes();
    let layer = Digest::of(&[&bytes[..], b"layer"].concat());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": original.to_string(),
            "size": 1024 + u64::from(bytes[0]) * 8,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer.to_string(),
            "size": (1 + u64::from(bytes[1])) * 65_536,
        }],
        "annotations": {
            "org.opencontainers.image.description": format!("hoist registry double: stands for {original}"),
        },
    });
    serde_json::to_vec(&manifest).expect("a JSON value serialises")
}

/// Copies the thin tree `from` (`manifests/<p>/…`, `images/<p>/…`) to `to` with every digest
/// replaced by its twin, leaving out the projects with load errors, and returns the population
/// of a registry world where everything it promotes is already promoted. `to` must not exist.
pub fn twin_corpus(from: &Path, to: &Path) -> Result<TwinCorpus> {
    let loaded = hoist_manifest::load(&[Input::Thin(from.to_owned())]);
    let mut dropped: BTreeMap<String, String> = BTreeMap::new();
    for diagnostic in &loaded.diagnostics {
        if diagnostic.severity != Severity::Error {
            continue;
        }
        let project = project_of(from, &diagnostic.file).ok_or_else(|| Error::Corpus {
            path: diagnostic.file.to_path_buf(),
            reason: format!("an error outside any project: {diagnostic}"),
        })?;
        dropped
            .entry(project)
            .or_insert_with(|| diagnostic.to_string());
    }
    let kept: Vec<&Manifest> = loaded
        .manifests
        .iter()
        .filter(|manifest| {
            manifest
                .project
                .as_ref()
                .is_some_and(|project| !dropped.contains_key(project))
        })
        .collect();

    let mut population = Population::new();
    let mut twins = BTreeMap::new();
    for manifest in &kept {
        for image in &manifest.images {
            for entry in &image.dmap {
                twins.entry(entry.digest).or_insert_with(|| {
                    population.add_body(media_types::OCI_MANIFEST, twin_manifest(&entry.digest))
                });
            }
        }
    }
    let by_hex: HashMap<String, String> = twins
        .iter()
        .map(|(original, twin)| (original.hex(), twin.hex()))
        .collect();
    for top in ["manifests", "images"] {
        copy_tree(&from.join(top), &to.join(top), &dropped, &by_hex)?;
    }

    let mut sources = BTreeSet::new();
    for manifest in &kept {
        let Some(source) = manifest.source() else {
            continue;
        };
        for image in &manifest.images {
            sources.insert(format!("{}/{}", source.name, image.name));
        }
        let registries: Vec<String> = std::iter::once(source)
            .chain(manifest.destinations())
            .map(|registry| registry.name.to_string())
            .collect();
        for image in &manifest.images {
            for entry in &image.dmap {
                let tags: Vec<&str> = entry.tags.iter().map(|tag| tag.as_str()).collect();
                for registry in &registries {
                    population.insert(
                        &format!("{registry}/{}", image.name),
                        twins[&entry.digest],
                        &tags,
                    );
                }
            }
        }
    }

    let reloaded = hoist_manifest::load(&[Input::Thin(to.to_owned())]);
    if let Some(error) = reloaded
        .diagnostics
        .iter()
        .find(|diagnostic| diagnostic.severity == Severity::Error)
    {
        return Err(Error::Corpus {
            path: to.to_owned(),
            reason: format!("the copy does not load cleanly: {error}"),
        });
    }
    Ok(TwinCorpus {
        population,
        projects: kept
            .iter()
            .filter_map(|manifest| manifest.project.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        dropped: dropped.into_iter().collect(),
        twins,
        sources,
    })
}

/// Takes about one in `one_in` manifests out of every repository of `host` (chosen by digest, so
/// the choice is the same on every run and in every repository) and returns what was removed,
/// sorted.
pub fn remove_some(population: &mut Population, host: &str, one_in: u64) -> Vec<Removed> {
    let chosen: Vec<Removed> = population
        .repositories()
        .filter(|(repository_host, _, _)| *repository_host == host)
        .flat_map(|(host, path, repository)| {
            repository
                .manifests
                .iter()
                .filter(|digest| {
                    let bytes = digest.as_bytes();
                    let number = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
                    number % one_in.max(1) == 0
                })
                .map(|digest| Removed {
                    repository: format!("{host}/{path}"),
                    digest: *digest,
                    tags: repository
                        .tags
                        .iter()
                        .filter(|(_, target)| *target == digest)
                        .map(|(tag, _)| tag.clone())
                        .collect(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for removed in &chosen {
        population.remove(&removed.repository, &removed.digest);
    }
    chosen
}

/// The project (`<p>`) of a file under `root/manifests/<p>/` or `root/images/<p>/`.
fn project_of(root: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root).ok()?;
    let mut components = relative
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => name.to_str(),
            _ => None,
        });
    match (components.next()?, components.next()?) {
        ("manifests" | "images", project) => Some(project.to_owned()),
        _ => None,
    }
}

/// Copies `from` into `to` (created), skipping the dropped projects' directories and rewriting
/// the digests of every text file.
fn copy_tree(
    from: &Path,
    to: &Path,
    dropped: &BTreeMap<String, String>,
    by_hex: &HashMap<String, String>,
) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let path = entry.path();
        let target: PathBuf = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            if dropped.contains_key(entry.file_name().to_string_lossy().as_ref()) {
                continue;
            }
            copy_tree(&path, &target, &BTreeMap::new(), by_hex)?;
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let bytes = match String::from_utf8(bytes) {
                Ok(text) => rewrite_digests(&text, by_hex).into_bytes(),
                Err(error) => error.into_bytes(),
            };
            std::fs::write(&target, bytes).map_err(io(&target))?;
        }
    }
    Ok(())
}

/// Replaces every run of exactly 64 lowercase hex digits found in `by_hex` (whatever surrounds
/// it: quoted, unquoted, with or without `sha256:`) by its replacement.
fn rewrite_digests(text: &str, by_hex: &HashMap<String, String>) -> String {
    let bytes = text.as_bytes();
    let is_hex = |byte: u8| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut index = 0;
    while index < bytes.len() {
        if !is_hex(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && is_hex(bytes[index]) {
            index += 1;
        }
        if index - start == 64
            && let Some(replacement) = by_hex.get(&text[start..index])
        {
            out.push_str(&text[copied..start]);
            out.push_str(replacement);
            copied = index;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_whole_digests_only() {
        let old = "a".repeat(64);
        let new = "b".repeat(64);
        let by_hex = HashMap::from([(old.clone(), new.clone())]);
        let text = format!("\"sha256:{old}\": [v1]\nsha256:{old}: []\n{old}\nx{old}0\n");
        assert_eq!(
            rewrite_digests(&text, &by_hex),
            format!("\"sha256:{new}\": [v1]\nsha256:{new}: []\n{new}\nx{old}0\n"),
            "a 65-digit run is not a digest; an x before it is a boundary"
        );
    }

    #[test]
    fn a_twin_names_its_original_and_is_stable() {
        let original = Digest::of(b"original");
        let twin = twin_manifest(&original);
        assert_eq!(twin, twin_manifest(&original));
        let text = String::from_utf8(twin).unwrap();
        assert!(text.contains(&original.to_string()), "{text}");
    }

    #[test]
    fn finds_the_project_of_a_file() {
        let root = Path::new("/t");
        assert_eq!(
            project_of(root, Path::new("/t/images/p/images.yaml")).as_deref(),
            Some("p")
        );
        assert_eq!(
            project_of(root, Path::new("/t/manifests/q/promoter-manifest.yaml")).as_deref(),
            Some("q")
        );
        assert_eq!(project_of(root, Path::new("/t/README.md")), None);
    }
}
