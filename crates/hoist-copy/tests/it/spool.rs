//! Copiers sharing a [`Spool`]: one image to three registries reads each source blob once (the
//! source registry's access log says so); a failed upload retries from the spool, not the
//! source; a corrupt blob reaches no destination; the size cap holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt as _;
use hoist_copy::{Copier, CopyErrorKind, Spool, SpoolOptions};
use hoist_oci::{Digest, Reference};
use hoist_store::{
    ByteStream, ManifestHead, RawManifest, Sink, Source, StoreError, StoreErrorKind,
};
use hoist_testkit::{FaultProxy, Faults, Image, ImageBuilder, RegistryServer};

use crate::*;

/// Source blob GETs per digest in `server`'s access log.
fn blob_reads(server: &RegistryServer) -> HashMap<String, usize> {
    let mut reads = HashMap::new();
    for entry in server.access_log() {
        if entry.method == "GET"
            && let Some((_, digest)) = entry.path.split_once("/blobs/")
        {
            *reads.entry(digest.to_owned()).or_default() += 1;
        }
    }
    reads
}

fn spool(capacity: u64) -> (Spool, tempfile::TempDir) {
    let directory = tempfile::tempdir().unwrap();
    let spool = Spool::new(SpoolOptions {
        directory: directory.path().to_owned(),
        capacity,
        ..SpoolOptions::default()
    })
    .unwrap();
    (spool, directory)
}

/// Announces every blob of `image` once per destination.
fn expect_all(spool: &Spool, image: &Image, destinations: usize) {
    for blob in image.blobs() {
        spool.expect(blob.digest(), destinations);
    }
}

fn release_all(spool: &Spool, image: &Image) {
    for blob in image.blobs() {
        spool.release(&blob.digest());
    }
}

/// Whether the spool directory holds no file (the spool's files are never named).
fn is_empty(directory: &tempfile::TempDir) -> bool {
    std::fs::read_dir(directory.path())
        .unwrap()
        .next()
        .is_none()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_destinations_read_each_source_blob_once() {
    let source = registry();
    let destinations = [registry(), registry(), registry()];
    let image = ImageBuilder::new(40)
        .layers(&[3 << 20, 700_000, 4096])
        .build_multi_arch();
    push_source(&source, &image).await;
    let (spool, directory) = spool(64 << 20);
    expect_all(&spool, &image, destinations.len());
    let before = blob_reads(&source);

    let copies = destinations.iter().map(|destination| {
        let copier = Copier::new(store(&source.host()), store(&destination.host()), options())
            .with_spool(spool.clone());
        let digest = image.digest();
        async move { copier.copy(&request(digest, &["v1"])).await }
    });
    for report in futures::future::join_all(copies).await {
        let report = report.expect("every copy succeeds");
        assert_eq!(report.blobs_uploaded, image.blobs().len(), "{report:?}");
    }
    release_all(&spool, &image);
    for destination in &destinations {
        assert!(
            blob_reads(destination).is_empty(),
            "nothing is read back from a destination"
        );
    }
    let after = blob_reads(&source);
    for destination in &destinations {
        validate(
            &source.endpoint(),
            &destination.endpoint(),
            image.digest(),
            &["v1"],
        )
        .await;
    }

    for blob in image.blobs() {
        let key = blob.digest().to_string();
        let reads = after.get(&key).copied().unwrap_or(0) - before.get(&key).copied().unwrap_or(0);
        assert_eq!(reads, 1, "{key} read {reads} times for three destinations");
    }
    let stats = spool.stats();
    assert_eq!(stats.fetches, image.blobs().len() as u64, "{stats:?}");
    assert_eq!(stats.passed_through, 0, "{stats:?}");
    assert_eq!(stats.early_evictions, 0, "{stats:?}");
    assert!(is_empty(&directory), "the spool's files are never named");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_destination_streams_past_the_spool() {
    let (source, destination) = (registry(), registry());
    let image = ImageBuilder::new(41).layers(&[500_000, 2048]).build();
    push_source(&source, &image).await;
    let (spool, _directory) = spool(64 << 20);
    expect_all(&spool, &image, 1);
    let copier = Copier::new(store(&source.host()), store(&destination.host()), options())
        .with_spool(spool.clone());
    copier
        .copy(&request(image.digest(), &["v1"]))
        .await
        .expect("the copy");
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        image.digest(),
        &["v1"],
    )
    .await;
    let stats = spool.stats();
    assert_eq!(
        stats.passed_through,
        image.blobs().len() as u64,
        "{stats:?}"
    );
    assert_eq!(stats.peak_bytes, 0, "nothing was spooled: {stats:?}");
}

/// A destination whose first upload of one blob breaks halfway, after reading part of it.
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn Sink>,
    target: Digest,
    failed: AtomicBool,
}

#[async_trait::async_trait]
impl Source for Flaky {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn list_tags(&self, repository: &str) -> Result<Vec<hoist_oci::Tag>, StoreError> {
        self.inner.list_tags(repository).await
    }
    async fn head_manifest(
        &self,
        repository: &str,
        reference: &Reference,
    ) -> Result<Option<ManifestHead>, StoreError> {
        self.inner.head_manifest(repository, reference).await
    }
    async fn fetch_manifest(
        &self,
        repository: &str,
        reference: &Reference,
    ) -> Result<Option<RawManifest>, StoreError> {
        self.inner.fetch_manifest(repository, reference).await
    }
    async fn blob_size(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError> {
        self.inner.blob_size(repository, digest).await
    }
    async fn fetch_blob(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<ByteStream, StoreError> {
        self.inner.fetch_blob(repository, digest).await
    }
}

#[async_trait::async_trait]
impl Sink for Flaky {
    async fn push_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), StoreError> {
        self.inner.push_blob(repository, digest, size, stream).await
    }
    async fn push_verified_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        mut stream: ByteStream,
    ) -> Result<(), StoreError> {
        if *digest == self.target && !self.failed.swap(true, Ordering::SeqCst) {
            // Read a first chunk, then break like a dropped connection.
            let _ = stream.next().await;
            return Err(StoreError::new(
                StoreErrorKind::Network,
                "flaky",
                "connection reset",
            ));
        }
        self.inner
            .push_verified_blob(repository, digest, size, stream)
            .await
    }
    async fn mount_blob(
        &self,
        repository: &str,
        from: &str,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        self.inner.mount_blob(repository, from, digest).await
    }
    async fn push_manifest(
        &self,
        repository: &str,
        reference: &Reference,
        manifest: &RawManifest,
    ) -> Result<(), StoreError> {
        self.inner
            .push_manifest(repository, reference, manifest)
            .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_upload_reads_the_spool_not_the_source() {
    let source = registry();
    let (steady, flaky) = (registry(), registry());
    let image = ImageBuilder::new(42).layers(&[2 << 20, 10_000]).build();
    push_source(&source, &image).await;
    let target = image.layers[0].digest();
    let (spool, _directory) = spool(64 << 20);
    expect_all(&spool, &image, 2);

    let broken: Arc<dyn Sink> = Arc::new(Flaky {
        inner: store(&flaky.host()),
        target,
        failed: AtomicBool::new(false),
    });
    let copiers = [
        Copier::new(store(&source.host()), store(&steady.host()), options()),
        Copier::new(store(&source.host()), broken, options()),
    ];
    let copies = copiers.into_iter().map(|copier| {
        let copier = copier.with_spool(spool.clone());
        let digest = image.digest();
        async move { copier.copy(&request(digest, &["v1"])).await }
    });
    for report in futures::future::join_all(copies).await {
        report.expect("both copies succeed, one after a retry");
    }
    release_all(&spool, &image);
    for destination in [&steady, &flaky] {
        validate(
            &source.endpoint(),
            &destination.endpoint(),
            image.digest(),
            &["v1"],
        )
        .await;
    }
    let reads = blob_reads(&source);
    assert_eq!(
        reads.get(&target.to_string()).copied(),
        Some(1),
        "the retry read the spool: {reads:?}"
    );
    assert!(spool.stats().reads >= 3, "{:?}", spool.stats());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_source_blob_reaches_no_destination_and_is_read_once() {
    let source = registry();
    let destinations = [registry(), registry(), registry()];
    let image = ImageBuilder::new(43).layers(&[1 << 20, 3000]).build();
    push_source(&source, &image).await;
    let corrupted = image.layers[0].digest();
    let proxy = FaultProxy::start(&source.host(), Faults::none().corrupt_blob(corrupted))
        .await
        .unwrap();
    let (spool, _directory) = spool(64 << 20);
    expect_all(&spool, &image, destinations.len());

    let copies = destinations.iter().map(|destination| {
        let copier = Copier::new(store(&proxy.host()), store(&destination.host()), options())
            .with_spool(spool.clone());
        let digest = image.digest();
        async move { copier.copy(&request(digest, &["v1"])).await }
    });
    for result in futures::future::join_all(copies).await {
        let error = result.expect_err("corrupt content fails every copy");
        assert_eq!(error.kind(), CopyErrorKind::DigestMismatch, "{error}");
    }
    let reads = proxy
        .requests()
        .iter()
        .filter(|request| request.method == "GET" && request.path.contains(&corrupted.hex()))
        .count();
    assert_eq!(reads, 1, "read once, and a mismatch is not retried");
    for destination in &destinations {
        assert!(!blob_exists(destination, DESTINATION_REPOSITORY, corrupted).await);
        assert!(!manifest_exists(destination, DESTINATION_REPOSITORY, "v1").await);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_size_cap_holds_and_a_larger_blob_is_held_alone() {
    let source = registry();
    let destinations = [registry(), registry()];
    // Six 1 MiB layers and one of 3 MiB, through a 2.5 MiB spool.
    let image = ImageBuilder::new(44)
        .layers(&[
            1 << 20,
            1 << 20,
            1 << 20,
            1 << 20,
            1 << 20,
            1 << 20,
            3 << 20,
        ])
        .build();
    push_source(&source, &image).await;
    let capacity = 5 << 19;
    let (spool, _directory) = spool(capacity);
    expect_all(&spool, &image, destinations.len());
    let copies = destinations.iter().map(|destination| {
        let copier = Copier::new(store(&source.host()), store(&destination.host()), options())
            .with_spool(spool.clone());
        let digest = image.digest();
        async move { copier.copy(&request(digest, &["v1"])).await }
    });
    for report in futures::future::join_all(copies).await {
        report.expect("every copy succeeds within the cap");
    }
    for destination in &destinations {
        validate(
            &source.endpoint(),
            &destination.endpoint(),
            image.digest(),
            &["v1"],
        )
        .await;
    }
    let largest = image
        .blobs()
        .iter()
        .map(|blob| blob.descriptor.size)
        .max()
        .unwrap();
    let stats = spool.stats();
    assert!(
        stats.peak_bytes <= capacity.max(largest),
        "held {} bytes at most, the cap is {capacity}: {stats:?}",
        stats.peak_bytes
    );
    assert!(
        stats.peak_bytes >= largest,
        "the big blob was spooled: {stats:?}"
    );
}
