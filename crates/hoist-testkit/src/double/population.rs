//! [`Population`]: what the registry double holds, by host and repository.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use hoist_oci::Digest;

/// One manifest the double can serve: its exact bytes and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestBody {
    /// The `Content-Type` it is served with.
    pub media_type: String,
    /// The bytes; their sha256 is the digest.
    pub bytes: Bytes,
}

/// One repository: its tags and every manifest it holds (tagged or not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repository {
    /// Tag -> digest.
    pub tags: BTreeMap<String, Digest>,
    /// Every manifest held, the targets of `tags` included.
    pub manifests: BTreeSet<Digest>,
}

/// Repositories by host (`us-west1-docker.pkg.dev`) and path below it
/// (`k8s-artifacts-prod/images/pause`), and the bytes of every manifest they hold. A repository
/// only ever names digests whose bytes are known, so a `GET` by digest always gets bytes that
/// hash to it: the double never serves a manifest that a client would rightly reject.
#[derive(Debug, Clone, Default)]
pub struct Population {
    hosts: BTreeMap<String, BTreeMap<String, Repository>>,
    bodies: HashMap<Digest, ManifestBody>,
}

/// `host/path` split at the first `/`.
fn split(repository: &str) -> Option<(&str, &str)> {
    let (host, path) = repository.split_once('/')?;
    (!host.is_empty() && !path.is_empty()).then_some((host, path))
}

impl Population {
    /// An empty population.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a manifest's bytes (in no repository yet) and returns its digest.
    pub fn add_body(&mut self, media_type: &str, bytes: impl Into<Bytes>) -> Digest {
        let bytes = bytes.into();
        let digest = Digest::of(&bytes);
        self.bodies.entry(digest).or_insert_with(|| ManifestBody {
            media_type: media_type.to_owned(),
            bytes,
        });
        digest
    }

    /// Puts `digest` (whose bytes were registered with [`Population::add_body`]) into
    /// `repository` (`HOST/PATH`) and points `tags` at it (moving them if they pointed elsewhere).
    ///
    /// # Panics
    /// When the bytes of `digest` are unknown or `repository` has no `/`: both are mistakes in
    /// the test that builds the population.
    pub fn insert(&mut self, repository: &str, digest: Digest, tags: &[&str]) {
        assert!(
            self.bodies.contains_key(&digest),
            "the double needs the bytes of {digest} before a repository can hold it"
        );
        let (host, path) =
            split(repository).unwrap_or_else(|| panic!("{repository:?} is not HOST/PATH"));
        let entry = self
            .hosts
            .entry(host.to_owned())
            .or_default()
            .entry(path.to_owned())
            .or_default();
        entry.manifests.insert(digest);
        for tag in tags {
            entry.tags.insert((*tag).to_owned(), digest);
        }
    }

    /// Removes `digest` from `repository`, with every tag pointing at it. Says whether it was
    /// there.
    pub fn remove(&mut self, repository: &str, digest: &Digest) -> bool {
        let Some((host, path)) = split(repository) else {
            return false;
        };
        let Some(entry) = self
            .hosts
            .get_mut(host)
            .and_then(|repositories| repositories.get_mut(path))
        else {
            return false;
        };
        entry.tags.retain(|_, target| target != digest);
        entry.manifests.remove(digest)
    }

    /// The bytes of `digest`, if registered.
    pub fn body(&self, digest: &Digest) -> Option<&ManifestBody> {
        self.bodies.get(digest)
    }

    /// One repository of one host.
    pub fn repository(&self, host: &str, path: &str) -> Option<&Repository> {
        self.hosts.get(host)?.get(path)
    }

    /// Every host, sorted.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }

    /// Every repository as (`host`, `path`, repository), sorted.
    pub fn repositories(&self) -> impl Iterator<Item = (&str, &str, &Repository)> {
        self.hosts.iter().flat_map(|(host, repositories)| {
            repositories
                .iter()
                .map(move |(path, repository)| (host.as_str(), path.as_str(), repository))
        })
    }

    /// How many repositories, and how many (repository, manifest) pairs, the population holds.
    pub fn size(&self) -> (usize, usize) {
        self.repositories()
            .fold((0, 0), |(repositories, manifests), (_, _, repository)| {
                (repositories + 1, manifests + repository.manifests.len())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_a_digest_takes_its_tags_along() {
        let mut population = Population::new();
        let one = population.add_body("application/json", &b"one"[..]);
        let two = population.add_body("application/json", &b"two"[..]);
        population.insert("r.io/a/b", one, &["v1", "latest"]);
        population.insert("r.io/a/b", two, &["v2"]);
        assert!(population.remove("r.io/a/b", &one));
        assert!(!population.remove("r.io/a/b", &one), "already gone");
        let repository = population.repository("r.io", "a/b").unwrap();
        assert_eq!(repository.tags.keys().collect::<Vec<_>>(), ["v2"]);
        assert_eq!(repository.manifests.len(), 1);
        assert_eq!(population.size(), (1, 1));
    }

    #[test]
    #[should_panic(expected = "needs the bytes")]
    fn a_digest_without_bytes_is_refused() {
        Population::new().insert("r.io/a", Digest::of(b"unknown"), &[]);
    }
}
