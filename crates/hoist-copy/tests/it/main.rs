//! Integration tests of hoist-copy against real registry:2 servers on 127.0.0.1 (Debian's
//! `docker-registry`), driven through `hoist-registry`'s `RegistryStore` and checked with
//! hoist-testkit's independent validator after every copy.

mod attached;
mod copy;
mod dependencies;
mod faults;
mod spool;
mod tags;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hoist_copy::{Copier, CopyOptions, CopyReport, CopyRequest, ProgressEvent};
use hoist_oci::{Digest, Tag};
use hoist_registry::{RegistryStore, RetryPolicy};
use hoist_testkit::{Endpoint, Image, RegistryServer};

/// Where test images live in the source registry.
pub const SOURCE_REPOSITORY: &str = "staging/app";
/// Where they are copied to.
pub const DESTINATION_REPOSITORY: &str = "prod/app";

/// Starts a plain registry.
pub fn registry() -> RegistryServer {
    RegistryServer::start(hoist_testkit::RegistryOptions::plain()).expect("start docker-registry")
}

/// A plain-HTTP store for `host`, with short retry delays so fault tests stay quick.
pub fn store(host: &str) -> Arc<RegistryStore> {
    let options = hoist_registry::RegistryOptions {
        insecure: true,
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
        },
        ..Default::default()
    };
    Arc::new(RegistryStore::new(host, options).expect("a registry store"))
}

/// Copier options for tests: default, but with short backoff.
pub fn options() -> CopyOptions {
    CopyOptions {
        backoff: Duration::from_millis(50),
        ..CopyOptions::default()
    }
}

/// A copier from `source_host` to `destination_host`.
pub fn copier(source_host: &str, destination_host: &str) -> Copier {
    Copier::new(store(source_host), store(destination_host), options())
}

/// Pushes `image` to the source repository of `server` (untagged).
pub async fn push_source(server: &RegistryServer, image: &Image) {
    push_tagged(server, SOURCE_REPOSITORY, image, &[]).await;
}

/// Pushes `image` to `repository` of `server` with `tags`.
pub async fn push_tagged(server: &RegistryServer, repository: &str, image: &Image, tags: &[&str]) {
    let endpoint = server.endpoint();
    let client = endpoint.client().unwrap();
    hoist_testkit::push(&client, &endpoint, repository, image, tags)
        .await
        .expect("push the image");
}

/// A request from the source to the destination repository.
pub fn request(digest: Digest, tags: &[&str]) -> CopyRequest {
    CopyRequest {
        source_repository: SOURCE_REPOSITORY.to_owned(),
        destination_repository: DESTINATION_REPOSITORY.to_owned(),
        digest,
        tags: tags.iter().map(|tag| Tag::parse(tag).unwrap()).collect(),
        missing: false,
    }
}

/// Validates the copy of `digest` and each tag at the destination.
pub async fn validate(source: &Endpoint, destination: &Endpoint, digest: Digest, tags: &[&str]) {
    hoist_testkit::validate_copy(
        source,
        SOURCE_REPOSITORY,
        destination,
        DESTINATION_REPOSITORY,
        digest,
    )
    .await
    .expect("a faithful copy");
    for tag in tags {
        hoist_testkit::validate_tag(destination, DESTINATION_REPOSITORY, tag, digest)
            .await
            .expect("the tag points at the copy");
    }
}

/// Copies and validates in one go; returns the report.
pub async fn copy_and_validate(
    source: &RegistryServer,
    destination: &RegistryServer,
    image: &Image,
    tags: &[&str],
) -> CopyReport {
    let report = copier(&source.host(), &destination.host())
        .copy(&request(image.digest(), tags))
        .await
        .expect("the copy succeeds");
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        image.digest(),
        tags,
    )
    .await;
    report
}

/// Records every progress event.
#[derive(Debug, Default, Clone)]
pub struct Recorder(Arc<Mutex<Vec<ProgressEvent>>>);

impl Recorder {
    /// A progress hook that records into this recorder.
    pub fn hook(&self) -> hoist_copy::Progress {
        let events = Arc::clone(&self.0);
        Arc::new(move |event: &ProgressEvent| events.lock().unwrap().push(event.clone()))
    }

    /// The events so far.
    pub fn events(&self) -> Vec<ProgressEvent> {
        self.0.lock().unwrap().clone()
    }
}

/// Whether the destination has `digest` in `repository`.
pub async fn blob_exists(server: &RegistryServer, repository: &str, digest: Digest) -> bool {
    let endpoint = server.endpoint();
    hoist_testkit::blob_exists(&endpoint.client().unwrap(), &endpoint, repository, digest)
        .await
        .unwrap()
}

/// Whether `reference` (tag or digest) resolves in `repository` of `server`.
pub async fn manifest_exists(server: &RegistryServer, repository: &str, reference: &str) -> bool {
    let endpoint = server.endpoint();
    hoist_testkit::fetch_manifest(
        &endpoint.client().unwrap(),
        &endpoint,
        repository,
        reference,
    )
    .await
    .is_ok()
}
