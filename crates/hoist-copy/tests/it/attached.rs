//! Attached artifacts: cosign signatures copied along with their image.

use hoist_oci::Tag;
use hoist_testkit::{ImageBuilder, signature_for};

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_cosign_signature_is_copied_along() {
    let (source, destination) = (registry(), registry());
    let image = ImageBuilder::new(30).layer(4096).build_multi_arch();
    let signature = signature_for(&image, 31);
    let signature_tag = image.signature_tag();
    push_source(&source, &image).await;
    push_tagged(&source, SOURCE_REPOSITORY, &signature, &[&signature_tag]).await;
    // A signature of another digest must not come along.
    let other = ImageBuilder::new(32).layer(100).build();
    push_tagged(
        &source,
        SOURCE_REPOSITORY,
        &signature_for(&other, 33),
        &[&other.signature_tag()],
    )
    .await;

    let report = copy_and_validate(&source, &destination, &image, &["v1"]).await;
    assert_eq!(
        report.attached,
        [hoist_copy::AttachedArtifact {
            tag: Tag::parse(&signature_tag).unwrap(),
            digest: signature.digest()
        }]
    );
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        signature.digest(),
        &[&signature_tag],
    )
    .await;
    assert!(!manifest_exists(&destination, DESTINATION_REPOSITORY, &other.signature_tag()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn attached_artifacts_stay_behind_when_disabled() {
    let (source, destination) = (registry(), registry());
    let image = ImageBuilder::new(34).layer(4096).build();
    let signature = signature_for(&image, 35);
    push_source(&source, &image).await;
    push_tagged(
        &source,
        SOURCE_REPOSITORY,
        &signature,
        &[&image.signature_tag()],
    )
    .await;

    let options = hoist_copy::CopyOptions {
        attached: false,
        ..options()
    };
    let report =
        hoist_copy::Copier::new(store(&source.host()), store(&destination.host()), options)
            .copy(&request(image.digest(), &["v1"]))
            .await
            .expect("the copy succeeds");
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        image.digest(),
        &["v1"],
    )
    .await;
    assert!(report.attached.is_empty());
    assert!(!manifest_exists(&destination, DESTINATION_REPOSITORY, &image.signature_tag()).await);
}

/// A real registry:2 source that also answers the OCI referrers API (registry:2 2.8 has none) with
/// a fixed list: the referrers themselves are real manifests stored in the registry, untagged.
#[derive(Debug)]
struct WithReferrers {
    inner: Arc<hoist_registry::RegistryStore>,
    subject: hoist_oci::Digest,
    referrers: Vec<hoist_store::Referrer>,
}

#[async_trait::async_trait]
impl hoist_store::Source for WithReferrers {
    fn describe(&self) -> String {
        format!("{} (with referrers)", self.inner.describe())
    }
    async fn list_tags(&self, repository: &str) -> Result<Vec<Tag>, hoist_store::StoreError> {
        self.inner.list_tags(repository).await
    }
    async fn head_manifest(
        &self,
        repository: &str,
        reference: &hoist_oci::Reference,
    ) -> Result<Option<hoist_store::ManifestHead>, hoist_store::StoreError> {
        self.inner.head_manifest(repository, reference).await
    }
    async fn fetch_manifest(
        &self,
        repository: &str,
        reference: &hoist_oci::Reference,
    ) -> Result<Option<hoist_store::RawManifest>, hoist_store::StoreError> {
        self.inner.fetch_manifest(repository, reference).await
    }
    async fn blob_size(
        &self,
        repository: &str,
        digest: &hoist_oci::Digest,
    ) -> Result<Option<u64>, hoist_store::StoreError> {
        self.inner.blob_size(repository, digest).await
    }
    async fn fetch_blob(
        &self,
        repository: &str,
        digest: &hoist_oci::Digest,
    ) -> Result<hoist_store::ByteStream, hoist_store::StoreError> {
        self.inner.fetch_blob(repository, digest).await
    }
    async fn referrers(
        &self,
        _repository: &str,
        digest: &hoist_oci::Digest,
    ) -> Result<Option<Vec<hoist_store::Referrer>>, hoist_store::StoreError> {
        Ok(Some(if *digest == self.subject {
            self.referrers.clone()
        } else {
            Vec::new()
        }))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn referrers_listed_by_the_api_are_copied_by_digest() {
    let (source, destination) = (registry(), registry());
    let image = ImageBuilder::new(36).layer(4096).build();
    // An SBOM-like referrer, pushed untagged: only the referrers API can find it.
    let sbom = signature_for(&image, 37);
    push_source(&source, &image).await;
    push_tagged(&source, SOURCE_REPOSITORY, &sbom, &[]).await;
    let real = store(&source.host());
    use hoist_store::Source as _;
    assert_eq!(
        real.referrers(SOURCE_REPOSITORY, &image.digest())
            .await
            .unwrap(),
        None,
        "registry:2 2.8 has no referrers API"
    );

    let with_api = Arc::new(WithReferrers {
        inner: real,
        subject: image.digest(),
        referrers: vec![hoist_store::Referrer {
            media_type: sbom.media_type().to_owned(),
            digest: sbom.digest(),
            size: sbom.descriptor.size,
            artifact_type: Some("application/spdx+json".to_owned()),
        }],
    });
    let copier = hoist_copy::Copier::new(with_api, store(&destination.host()), options());
    let report = copier
        .copy(&request(image.digest(), &["v1"]))
        .await
        .unwrap();
    assert_eq!(report.referrers, [sbom.digest()]);
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        sbom.digest(),
        &[],
    )
    .await;
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        image.digest(),
        &["v1"],
    )
    .await;
}
