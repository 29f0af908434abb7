//! OCI image layouts on disk as a hoist [`Source`] and [`Sink`].
//!
//! hoist names a layout like a registry, `oci:PATH`. [`LayoutStore::open`] takes `PATH` as the
//! root, and each *repository* is a sub-directory `PATH/<repository>/` holding one standard
//! [OCI image layout](https://github.com/opencontainers/image-spec/blob/main/image-layout.md):
//!
//! ```text
//! PATH/foo/bar/oci-layout          {"imageLayoutVersion":"1.0.0"}
//! PATH/foo/bar/index.json          an OCI index; tags are `org.opencontainers.image.ref.name` annotations
//! PATH/foo/bar/blobs/sha256/<hex>  blobs and manifests, by digest
//! ```
//!
//! so `skopeo copy oci:PATH/foo/bar:TAG …` reads what hoist wrote. Repository names must be valid
//! [`RepositoryPath`]s (no `..`, no leading `/`), so a layout never writes outside its root, and
//! none of their components may be a name a layout keeps for itself (`blobs`, `index.json`,
//! `oci-layout`): `foo/blobs` would land inside `foo`'s layout.
//!
//! Writes are crash-safe: every blob goes to a `.tmp-…` file in `blobs/sha256/`, hashed on the way,
//! synced, and renamed to its digest only when size and digest match; `index.json` is replaced by
//! rename too. Updates of one repository's `index.json` are serialised per canonical directory
//! ([`canonical_directory`]: `oci:out/prod` and `oci:./out/prod` are one layout), so concurrent
//! tag pushes within one process keep every tag, whichever store and spelling they go through.
//! (Two *processes* writing one layout are not coordinated.) Manifests are checked to be
//! unambiguously an image or an index ([`hoist_oci::manifest_kind`]) when read and written.
//!
//! All failures are [`StoreError`]s: this crate has no error type of its own, because the trait
//! methods are its whole API and [`StoreErrorKind`] already says what callers branch on.

mod files;
mod index;
mod paths;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hoist_oci::{Digest, Reference, RepositoryPath, Tag};
use hoist_store::{
    ByteStream, ManifestHead, RawManifest, Sink, Source, StoreError, StoreErrorKind, TagListing,
};

pub use crate::paths::canonical_directory;

use crate::files::{file_size, io_error, read_small, read_stream};
use crate::index::{
    Descriptor, ImageIndex, MANIFEST_SIZE_LIMIT, OCI_LAYOUT, required_digests, sniff_media_type,
};

/// A directory of OCI image layouts, one per repository. See the [crate] docs.
#[derive(Debug)]
pub struct LayoutStore {
    /// The root as given (for messages).
    root: PathBuf,
    /// The root as [`canonical_directory`] resolves it (for locks).
    canonical: PathBuf,
}

impl LayoutStore {
    /// A store rooted at `root`. Nothing is read or created until it is used; a repository's
    /// layout is created by its first push.
    pub fn open(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            canonical: canonical_directory(root),
        }
    }

    /// The root directory, as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The root directory, absolute with links resolved: equal for every spelling of one layout.
    pub fn canonical_root(&self) -> &Path {
        &self.canonical
    }

    /// The layout directory of `repository`; refuses names that are not repository paths, which
    /// is what keeps every path below the root, and names that would land inside another
    /// repository's layout (a component `blobs`, `index.json` or `oci-layout`).
    pub fn repository_dir(&self, repository: &str) -> Result<PathBuf, StoreError> {
        let subject = || format!("{}/{repository}", self.describe());
        let path = RepositoryPath::parse(repository).map_err(|error| {
            StoreError::new(StoreErrorKind::Rejected, subject(), error.to_string())
        })?;
        if let Some(reserved) = paths::reserved_component(repository) {
            return Err(StoreError::new(
                StoreErrorKind::Rejected,
                subject(),
                format!(
                    "{reserved:?} is a name an OCI layout keeps for itself: the repository would \
                     land inside another repository's layout"
                ),
            ));
        }
        Ok(self.root.join(path.as_str()))
    }

    fn blob_path(layout: &Path, digest: &Digest) -> PathBuf {
        layout.join("blobs").join("sha256").join(digest.hex())
    }

    /// The lock of `repository`'s `index.json`, shared with every store of this process that
    /// reaches the same directory.
    fn index_lock(&self, repository: &str) -> Arc<tokio::sync::Mutex<()>> {
        paths::index_lock(&self.canonical.join(repository))
    }

    /// `index.json` of the layout, `None` when there is none.
    async fn read_index(layout: &Path) -> Result<Option<ImageIndex>, StoreError> {
        let path = layout.join("index.json");
        let Some(bytes) = read_small(&path).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|error| {
            StoreError::new(
                StoreErrorKind::Protocol,
                path.display().to_string(),
                format!("not an OCI index: {error}"),
            )
            .with_source(error)
        })
    }

    /// Creates the layout skeleton (`oci-layout`, `blobs/sha256/`, an empty `index.json`) where
    /// missing, so the layout is valid for other tools from the first push on.
    async fn ensure_layout(&self, repository: &str, layout: &Path) -> Result<(), StoreError> {
        let blobs = layout.join("blobs").join("sha256");
        tokio::fs::create_dir_all(&blobs)
            .await
            .map_err(|source| io_error(&blobs, source))?;
        let marker = layout.join("oci-layout");
        if file_size(&marker).await?.is_none() {
            files::write_atomic(&marker, OCI_LAYOUT).await?;
        }
        let index_path = layout.join("index.json");
        if file_size(&index_path).await?.is_none() {
            let lock = self.index_lock(repository);
            let _guard = lock.lock().await;
            if file_size(&index_path).await?.is_none() {
                write_index(&index_path, &ImageIndex::default()).await?;
            }
        }
        Ok(())
    }

    /// The media type of the manifest blob `digest`: from `index.json` when it lists the digest,
    /// else from the bytes. `None` when the blob is missing or not a manifest.
    async fn manifest_blob(
        layout: &Path,
        digest: &Digest,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let path = Self::blob_path(layout, digest);
        match file_size(&path).await? {
            Some(size) if size <= MANIFEST_SIZE_LIMIT => {}
            _ => return Ok(None),
        }
        let Some(bytes) = read_small(&path).await? else {
            return Ok(None);
        };
        verify_bytes(&path, digest, &bytes)?;
        let listed = Self::read_index(layout).await?.and_then(|index| {
            index
                .find_digest(digest)
                .map(|descriptor| descriptor.media_type.clone())
        });
        if let Some(media_type) = &listed {
            let subject = path.display().to_string();
            RawManifest::check_unambiguous(&subject, media_type, &bytes, StoreErrorKind::Protocol)?;
        }
        Ok(listed
            .or_else(|| sniff_media_type(&bytes))
            .map(|media_type| (media_type, bytes)))
    }

    /// The index entry of `tag`, with its parsed digest.
    async fn tagged(
        &self,
        layout: &Path,
        tag: &Tag,
    ) -> Result<Option<(Descriptor, Digest)>, StoreError> {
        let Some(index) = Self::read_index(layout).await? else {
            return Ok(None);
        };
        let Some(descriptor) = index.find_tag(tag) else {
            return Ok(None);
        };
        let digest = descriptor.parsed_digest().ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Unsupported,
                format!("{}:{tag}", layout.display()),
                format!(
                    "index.json names digest {:?}, which hoist cannot read (sha256 only)",
                    descriptor.digest
                ),
            )
        })?;
        Ok(Some((descriptor.clone(), digest)))
    }
}

async fn write_index(path: &Path, index: &ImageIndex) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(index).map_err(|error| {
        StoreError::new(
            StoreErrorKind::Protocol,
            path.display().to_string(),
            error.to_string(),
        )
    })?;
    files::write_atomic(path, &bytes).await
}

fn verify_bytes(path: &Path, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
    let actual = Digest::of(bytes);
    if actual == *digest {
        return Ok(());
    }
    let size = bytes.len() as u64;
    Err(StoreError::digest_mismatch(
        path.display().to_string(),
        digest,
        size,
        &actual,
        size,
    ))
}

#[async_trait::async_trait]
impl Source for LayoutStore {
    fn describe(&self) -> String {
        format!("oci:{}", self.root.display())
    }

    async fn list_tags(&self, repository: &str) -> Result<Vec<Tag>, StoreError> {
        let layout = self.repository_dir(repository)?;
        Ok(Self::read_index(&layout)
            .await?
            .map(|index| index.tags())
            .unwrap_or_default())
    }

    async fn list_tags_with_digests(&self, repository: &str) -> Result<TagListing, StoreError> {
        let layout = self.repository_dir(repository)?;
        let index = Self::read_index(&layout).await?;
        let missing = index.is_none();
        let index = index.unwrap_or_default();
        Ok(TagListing {
            tags: index.tags(),
            digests: Some(index.tag_digests()),
            missing,
            untagged: None,
        })
    }

    /// `index.json` names the digest of every tag.
    fn lists_tag_digests(&self) -> bool {
        true
    }

    async fn head_manifest(
        &self,
        repository: &str,
        reference: &Reference,
    ) -> Result<Option<ManifestHead>, StoreError> {
        let layout = self.repository_dir(repository)?;
        match reference {
            Reference::Tag(tag) => {
                Ok(self
                    .tagged(&layout, tag)
                    .await?
                    .map(|(descriptor, digest)| ManifestHead {
                        digest,
                        media_type: descriptor.media_type,
                        size: descriptor.size,
                    }))
            }
            Reference::Digest(digest) => {
                Ok(Self::manifest_blob(&layout, digest)
                    .await?
                    .map(|(media_type, bytes)| ManifestHead {
                        digest: *digest,
                        media_type,
                        size: bytes.len() as u64,
                    }))
            }
        }
    }

    async fn fetch_manifest(
        &self,
        repository: &str,
        reference: &Reference,
    ) -> Result<Option<RawManifest>, StoreError> {
        let layout = self.repository_dir(repository)?;
        match reference {
            Reference::Tag(tag) => {
                let Some((descriptor, digest)) = self.tagged(&layout, tag).await? else {
                    return Ok(None);
                };
                let path = Self::blob_path(&layout, &digest);
                let bytes = read_small(&path).await?.ok_or_else(|| {
                    StoreError::new(
                        StoreErrorKind::Protocol,
                        path.display().to_string(),
                        format!("index.json tags {digest} as {tag}, but the blob is missing"),
                    )
                })?;
                verify_bytes(&path, &digest, &bytes)?;
                RawManifest::check_unambiguous(
                    &path.display().to_string(),
                    &descriptor.media_type,
                    &bytes,
                    StoreErrorKind::Protocol,
                )?;
                Ok(Some(RawManifest {
                    media_type: descriptor.media_type,
                    bytes: bytes.into(),
                    digest,
                }))
            }
            Reference::Digest(digest) => {
                Ok(Self::manifest_blob(&layout, digest)
                    .await?
                    .map(|(media_type, bytes)| RawManifest {
                        media_type,
                        bytes: bytes.into(),
                        digest: *digest,
                    }))
            }
        }
    }

    async fn blob_size(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError> {
        let layout = self.repository_dir(repository)?;
        file_size(&Self::blob_path(&layout, digest)).await
    }

    async fn fetch_blob(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<ByteStream, StoreError> {
        let layout = self.repository_dir(repository)?;
        read_stream(&Self::blob_path(&layout, digest)).await
    }
}

#[async_trait::async_trait]
impl Sink for LayoutStore {
    async fn push_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), StoreError> {
        let layout = self.repository_dir(repository)?;
        let target = Self::blob_path(&layout, digest);
        // Blobs are named by content: one that exists already holds these bytes.
        if file_size(&target).await?.is_some() {
            return Ok(());
        }
        self.ensure_layout(repository, &layout).await?;
        files::write_verified(&target, digest, size, stream).await
    }

    async fn mount_blob(
        &self,
        repository: &str,
        from_repository: &str,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        let layout = self.repository_dir(repository)?;
        let source = Self::blob_path(&self.repository_dir(from_repository)?, digest);
        if file_size(&source).await?.is_none() {
            return Ok(false);
        }
        let target = Self::blob_path(&layout, digest);
        if file_size(&target).await?.is_some() {
            return Ok(true);
        }
        self.ensure_layout(repository, &layout).await?;
        match tokio::fs::hard_link(&source, &target).await {
            Ok(()) => Ok(true),
            // A concurrent push or mount got there first, with the same content.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(true),
            // Hard links can be unsupported (some file systems) or forbidden: copy instead,
            // verified and synced like any other write.
            Err(_) => files::copy_verified(&source, &target, digest)
                .await
                .map(|()| true),
        }
    }

    async fn push_manifest(
        &self,
        repository: &str,
        reference: &Reference,
        manifest: &RawManifest,
    ) -> Result<(), StoreError> {
        let layout = self.repository_dir(repository)?;
        let subject = format!(
            "{}/{repository}{}{reference}",
            self.describe(),
            reference.separator()
        );
        let actual = Digest::of(&manifest.bytes);
        let size = manifest.bytes.len() as u64;
        let claimed = match reference {
            Reference::Digest(digest) => *digest,
            Reference::Tag(_) => manifest.digest,
        };
        if actual != manifest.digest || actual != claimed {
            return Err(StoreError::digest_mismatch(
                subject, &claimed, size, &actual, size,
            ));
        }
        RawManifest::check_unambiguous(
            &subject,
            &manifest.media_type,
            &manifest.bytes,
            StoreErrorKind::Rejected,
        )?;
        // Like a registry: a manifest whose content is not all here is refused.
        let required = required_digests(&manifest.bytes)
            .map_err(|message| StoreError::new(StoreErrorKind::Rejected, &subject, message))?;
        for digest in required {
            if file_size(&Self::blob_path(&layout, &digest))
                .await?
                .is_none()
            {
                return Err(StoreError::new(
                    StoreErrorKind::Rejected,
                    &subject,
                    format!("the manifest references {digest}, which is not in the repository"),
                ));
            }
        }
        self.ensure_layout(repository, &layout).await?;
        let target = Self::blob_path(&layout, &actual);
        if file_size(&target).await?.is_none() {
            files::write_atomic(&target, &manifest.bytes).await?;
        }
        let media_type = match manifest.media_type.as_str() {
            "" => sniff_media_type(&manifest.bytes).unwrap_or_default(),
            declared => declared.to_owned(),
        };
        let lock = self.index_lock(repository);
        let _guard = lock.lock().await;
        let index_path = layout.join("index.json");
        let mut index = Self::read_index(&layout).await?.unwrap_or_default();
        match reference {
            Reference::Tag(tag) => {
                index.set_tag(tag, Descriptor::new(&media_type, &actual, size, Some(tag)));
            }
            Reference::Digest(_) => {
                if !index.add_untagged(Descriptor::new(&media_type, &actual, size, None)) {
                    return Ok(());
                }
            }
        }
        write_index(&index_path, &index).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_dirs_stay_below_the_root() {
        let store = LayoutStore::open(Path::new("layouts/prod"));
        assert_eq!(
            store.repository_dir("foo/bar").unwrap(),
            Path::new("layouts/prod/foo/bar")
        );
        for bad in [
            "../x",
            "foo/../../x",
            "/etc",
            "foo//bar",
            "",
            "a/./b",
            "Foo",
            "foo/blobs",
            "foo/index.json",
            "foo/oci-layout",
            "blobs/sha256",
        ] {
            let error = store.repository_dir(bad).unwrap_err();
            assert_eq!(error.kind(), StoreErrorKind::Rejected, "{bad}");
            assert!(error.subject().contains("oci:layouts/prod"), "{error}");
        }
    }

    #[test]
    fn describes_itself_as_an_oci_name() {
        assert_eq!(LayoutStore::open(Path::new("a/b")).describe(), "oci:a/b");
    }
}
