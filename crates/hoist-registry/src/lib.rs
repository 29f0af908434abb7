//! OCI registry access: [`RegistryStore`] implements hoist-store's [`Source`] and [`Sink`] for one
//! registry host over the distribution API
//! (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md>).
//!
//! A store is made of a transport (module `client`: authentication, retries, redirects, a request
//! counter and budget; module `limits`: adaptive concurrency per kind of request and an optional
//! rate cap; module `wire`: timeouts on silence, never on duration) and the operations built on it:
//! manifests
//! (`manifests`), blobs and uploads (`blobs`, `upload`) and tag listing (`tags`).
//! Credentials come from the caller or a Docker `config.json` ([`RegistryCredentials`]).
//!
//! # Why reqwest and not oci-client
//!
//! Every request is made with `reqwest` directly; `oci-client` is not used. Measured against
//! registry:2, its API gets in the way of what the copier needs: it does not return a manifest's
//! `Content-Type` (so a copy cannot push the bytes back with their exact media type); it probes
//! `GET /v2/` before requests to anonymous registries (doubling the request count the benchmark
//! measures); its chunked push sends one `PATCH` per stream item (thousands of tiny requests for a
//! network stream); a mount the registry refuses (202) leaves the upload session open; it neither
//! follows `Link` paging of tag lists nor retries; and its redirect handling is reqwest's, which
//! cannot be checked or tested here. Reference parsing and manifest types already live in
//! `hoist-oci`, and the token flow is short, so nothing was left for oci-client to do.

mod auth;
mod blobs;
mod client;
mod credentials;
mod limits;
mod manifests;
mod options;
mod retry;
mod tags;
mod upload;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hoist_oci::{Digest, Reference, RepositoryPath, Tag};
use hoist_store::{
    ByteStream, ManifestHead, RawManifest, Sink, Source, StoreError, StoreErrorKind, TagListing,
    VerifyingStream,
};

pub use credentials::RegistryCredentials;
pub use options::{Concurrency, RegistryOptions, RetryPolicy, Timeouts};

use crate::client::Transport;

/// One registry host, readable and writable. Cheap to clone: clones share the connection pool,
/// the token cache, the concurrency limit and the request counter.
#[derive(Debug, Clone)]
pub struct RegistryStore {
    transport: Arc<Transport>,
    /// A tag listing of this host carried digests (or the host is known to send them).
    lists_tag_digests: Arc<AtomicBool>,
}

impl RegistryStore {
    /// A store for `host` (`HOST[:PORT]`, no scheme or path). Reads the CA files in `options`;
    /// makes no request.
    pub fn new(host: &str, options: RegistryOptions) -> Result<Self, StoreError> {
        Ok(Self {
            transport: Arc::new(Transport::new(host, options)?),
            lists_tag_digests: Arc::new(AtomicBool::new(sends_manifest_map(host))),
        })
    }

    /// The host this store talks to.
    pub fn host(&self) -> &str {
        &self.transport.host
    }

    /// HTTP requests sent so far (token requests, redirects and retries each count).
    pub fn requests_made(&self) -> u64 {
        self.transport.requests_made()
    }

    /// 429 (too many requests) answers received so far.
    pub fn throttled_responses(&self) -> u64 {
        self.transport.throttled()
    }

    /// The concurrency window of each kind of request now (`head`, `read`, `upload`,
    /// `manifest-write`, `tag-list`, `token`): how many may wait for their response at once.
    pub fn concurrency_windows(&self) -> Vec<(&'static str, f64)> {
        self.transport.windows()
    }
}

/// GCR and Artifact Registry hosts, which add a `manifest` map (tag digests) to `tags/list`.
fn sends_manifest_map(host: &str) -> bool {
    let name = host.split(':').next().unwrap_or(host);
    name == "gcr.io" || name.ends_with(".gcr.io") || name.ends_with("-docker.pkg.dev")
}

/// Checks a repository path before it goes into a URL.
fn checked(repository: &str) -> Result<&str, StoreError> {
    RepositoryPath::parse(repository).map_err(|error| {
        StoreError::new(
            StoreErrorKind::Rejected,
            repository,
            "not a valid repository path",
        )
        .with_source(error)
    })?;
    Ok(repository)
}

#[async_trait::async_trait]
impl Source for RegistryStore {
    fn describe(&self) -> String {
        self.transport.host.clone()
    }

    async fn list_tags(&self, repository: &str) -> Result<Vec<Tag>, StoreError> {
        Ok(self.list_tags_with_digests(repository).await?.tags)
    }

    /// The tags of `repository` and, when the registry lists them (GCR and Artifact Registry
    /// send a `manifest` map), the digest each tag points to: an inventory without one manifest
    /// request per tag. A repository that does not exist has no tags.
    async fn list_tags_with_digests(&self, repository: &str) -> Result<TagListing, StoreError> {
        let listing = tags::list(&self.transport, checked(repository)?).await?;
        if listing.digests.is_some() {
            self.lists_tag_digests.store(true, Ordering::Relaxed);
        }
        Ok(listing)
    }

    fn lists_tag_digests(&self) -> bool {
        self.lists_tag_digests.load(Ordering::Relaxed)
    }

    async fn referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<Vec<hoist_store::Referrer>>, StoreError> {
        manifests::referrers(&self.transport, checked(repository)?, digest).await
    }

    async fn head_manifest(
        &self,
        repository: &str,
        reference: &Reference,
    ) -> Result<Option<ManifestHead>, StoreError> {
        manifests::head(&self.transport, checked(repository)?, reference).await
    }

    async fn fetch_manifest(
        &self,
        repository: &str,
        reference: &Reference,
    ) -> Result<Option<RawManifest>, StoreError> {
        manifests::fetch(&self.transport, checked(repository)?, reference).await
    }

    async fn blob_size(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError> {
        blobs::size(&self.transport, checked(repository)?, digest).await
    }

    async fn fetch_blob(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<ByteStream, StoreError> {
        blobs::fetch(&self.transport, checked(repository)?, digest).await
    }
}

#[async_trait::async_trait]
impl Sink for RegistryStore {
    async fn push_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), StoreError> {
        let subject = format!("{}/{repository}@{digest}", self.transport.host);
        let verified = VerifyingStream::new(stream, subject, *digest, size).boxed();
        upload::push(
            &self.transport,
            checked(repository)?,
            digest,
            size,
            verified,
        )
        .await
    }

    async fn push_verified_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), StoreError> {
        upload::push(&self.transport, checked(repository)?, digest, size, stream).await
    }

    async fn mount_blob(
        &self,
        repository: &str,
        from_repository: &str,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        upload::mount(
            &self.transport,
            checked(repository)?,
            checked(from_repository)?,
            digest,
        )
        .await
    }

    async fn push_manifest(
        &self,
        repository: &str,
        reference: &Reference,
        manifest: &RawManifest,
    ) -> Result<(), StoreError> {
        manifests::push(&self.transport, checked(repository)?, reference, manifest).await
    }
}
