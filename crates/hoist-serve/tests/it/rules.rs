//! Every rule of the redirector as a table: method and path (and `X-Forwarded-For`) in, status
//! and exact `Location` out. The cases of archeio's own handler tests are here, with hoist's
//! mirrors: an S3 bucket (s3s-fs, read anonymously) for AWS eu-west-3 and a directory as the
//! default. Existence checks are real requests to them.

use std::path::Path;

use hoist_object::{Backend, Catalogue};
use hoist_serve::{Mirrors, RegionMap, ServeConfig, Upstream};
use hoist_testkit::S3Server;

use crate::support::{Case, Running, check_table, client, fixtures};

pub const INFO: &str = "https://github.com/kubernetes/k8s.io/tree/main/registry.k8s.io";
pub const AR: &str = "https://us-central1-docker.pkg.dev";
pub const AR_PATH: &str = "k8s-artifacts-prod/images";
pub const GCR: &str = "https://k8s.gcr.io";
pub const BUCKET: &str = "prod-registry-k8s-io-eu-west-3";
/// In the S3 bucket and in the directory.
pub const IN_BOTH: &str = "sha256:da86e6ba6ca197bf6bc5e9d900febd906b133eaa4750e6bed647b0fbe50ed43e";
/// Nowhere.
pub const NOWHERE: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1234567";
/// Only in the directory.
pub const ONLY_LOCAL: &str =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// An AWS eu-west-3 client behind a Google load balancer.
pub const AWS_EU_WEST_3: &str = "35.180.1.1, 130.211.0.1";
/// An AWS us-east-1 client (no bucket there).
pub const AWS_US_EAST_1: &str = "52.4.0.1, 130.211.0.1";
/// A Google Cloud client (asia-east2).
pub const GCP: &str = "35.220.27.1, 130.211.0.1";

/// An S3 bucket (public, read anonymously) and a directory, with the blobs above.
pub struct Mirrored {
    /// Owns the data the anonymous `bucket` serves.
    _s3: S3Server,
    pub bucket: S3Server,
    pub directory: tempfile::TempDir,
}

impl Mirrored {
    pub async fn start() -> Self {
        let s3 = S3Server::start().expect("s3s-fs");
        s3.create_bucket(BUCKET).unwrap();
        let bucket = s3.anonymous_view().expect("s3s-fs");
        let directory = tempfile::tempdir().unwrap();
        let world = Self {
            _s3: s3,
            bucket,
            directory,
        };
        world.put_s3(IN_BOTH, b"in both").await;
        world.put_local(IN_BOTH, b"in both");
        world.put_local(ONLY_LOCAL, b"only local");
        world
    }

    /// Uploads a blob to the bucket (anonymously, through the S3 API).
    pub async fn put_s3(&self, digest: &str, bytes: &'static [u8]) {
        let response = reqwest::Client::new()
            .put(self.s3_url(digest))
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "PUT {digest}: {}",
            response.status()
        );
    }

    pub fn put_local(&self, digest: &str, bytes: &[u8]) {
        let images = self.directory.path().join("containers/images");
        std::fs::create_dir_all(&images).unwrap();
        std::fs::write(images.join(digest), bytes).unwrap();
    }

    pub fn s3_url(&self, digest: &str) -> String {
        format!(
            "{}/{BUCKET}/containers/images/{digest}",
            self.bucket.endpoint_url()
        )
    }

    /// `local` (a directory, first: the default) and `s3-eu-west-3`.
    pub fn catalogue(&self) -> Catalogue {
        let text = format!(
            "backends:\n\
             - name: local\n  url: file:{}\n  labels: {{cloud: local}}\n\
             - name: s3-eu-west-3\n  url: s3://{BUCKET}\n  region: eu-west-3\n  endpoint: {}\n  pathStyle: true\n  labels: {{cloud: aws, region: eu-west-3}}\n",
            self.directory.path().display(),
            self.bucket.endpoint_url()
        );
        Catalogue::from_str(&text, "backends.yaml").unwrap()
    }

    pub fn mirrors(&self) -> Mirrors {
        let catalogue = self.catalogue();
        let all: Vec<&Backend> = catalogue.backends.iter().collect();
        Mirrors::new(&all, None).unwrap()
    }
}

/// The published-format fixtures: AWS and Google ranges.
pub fn cloud_regions() -> RegionMap {
    let mut regions = RegionMap::new();
    regions
        .load(&fixtures().join("ip-ranges/aws-ip-ranges.json"))
        .unwrap();
    regions
        .load(&fixtures().join("ip-ranges/gcp-cloud.json"))
        .unwrap();
    regions
}

fn blob(digest: &str) -> String {
    format!("/v2/pause/blobs/{digest}")
}

fn ar(rest: &str) -> Option<String> {
    Some(format!("{AR}/v2/{AR_PATH}/{rest}"))
}

fn local(server: &Running, digest: &str) -> Option<String> {
    Some(format!(
        "{}/_hoist/mirrors/local/containers/images/{digest}",
        server.origin()
    ))
}

/// archeio's `TestMakeHandler` setting: Artifact Registry upstream with a path, behind a trusted
/// load balancer, no signature upstream.
#[tokio::test]
async fn behind_a_load_balancer() {
    let world = Mirrored::start().await;
    let mut config = ServeConfig::new(Upstream::parse(AR).unwrap());
    config.upstream_path = AR_PATH.to_owned();
    config.trusted_load_balancers = vec!["127.0.0.1/32".parse().unwrap()];
    config.regions = cloud_regions();
    config.mirrors = world.mirrors();
    let server = Running::start(config).await;
    let s3 = |digest: &str| Some(world.s3_url(digest));
    let sig = format!("sha256-{}.sig", &IN_BOTH[7..]);
    let cases = vec![
        Case::get("info", "/", 307, Some(INFO.to_owned())),
        Case::get("not under /v2", "/v3/", 404, None),
        Case::get("privacy is not served", "/privacy", 404, None),
        Case::get("v2 prefix of another word", "/v2foo", 404, None),
        Case::get("api version", "/v2/", 200, None),
        Case::get("api version without slash", "/v2", 200, None),
        Case::get("api version, HEAD", "/v2", 200, None).method("HEAD"),
        Case::get("POST", "/v2/", 405, None).method("POST"),
        Case::get("PUT", "/v2/pause/manifests/latest", 405, None).method("PUT"),
        Case::get("PATCH", "/v2/pause/blobs/uploads/x", 405, None).method("PATCH"),
        Case::get("DELETE", blob(IN_BOTH), 405, None).method("DELETE"),
        Case::get("catalog", "/v2/_catalog", 404, None),
        Case::get("manifest", "/v2/pause/manifests/latest", 307, ar("pause/manifests/latest")),
        Case::get("manifest, HEAD", "/v2/pause/manifests/latest", 307, ar("pause/manifests/latest")).method("HEAD"),
        Case::get("tags, n=0", "/v2/pause/tags/list?n=0", 307, ar("pause/tags/list?n=0")),
        Case::get("tags, paged", "/v2/pause/tags/list?n=1000&after=v1.2.3", 307, ar("pause/tags/list?n=1000&after=v1.2.3")),
        Case::get("nested name", "/v2/kubernetes/pause/manifests/v1", 307, ar("kubernetes/pause/manifests/v1")),
        Case::get("blob, no region: default mirror", blob(IN_BOTH), 307, local(&server, IN_BOTH)),
        Case::get("blob, no region, HEAD", blob(IN_BOTH), 307, local(&server, IN_BOTH)).method("HEAD"),
        Case::get("blob, AWS eu-west-3: its bucket", blob(IN_BOTH), 307, s3(IN_BOTH)).header("x-forwarded-for", AWS_EU_WEST_3),
        Case::get("blob, eu-west-3 with a spoofed first entry", blob(IN_BOTH), 307, s3(IN_BOTH)).header("x-forwarded-for", format!("9.9.9.9, {AWS_EU_WEST_3}")),
        Case::get("blob, two header lines", blob(IN_BOTH), 307, s3(IN_BOTH)).header("x-forwarded-for", "9.9.9.9").header("x-forwarded-for", AWS_EU_WEST_3),
        Case::get("blob, one entry", blob(IN_BOTH), 307, s3(IN_BOTH)).header("x-forwarded-for", "35.180.1.1"),
        Case::get("blob missing from the bucket: upstream", blob(NOWHERE), 307, ar(&format!("pause/blobs/{NOWHERE}"))).header("x-forwarded-for", AWS_EU_WEST_3),
        Case::get("blob only in another mirror: upstream", blob(ONLY_LOCAL), 307, ar(&format!("pause/blobs/{ONLY_LOCAL}"))).header("x-forwarded-for", AWS_EU_WEST_3),
        Case::get("blob, region without a bucket: default", blob(ONLY_LOCAL), 307, local(&server, ONLY_LOCAL)).header("x-forwarded-for", AWS_US_EAST_1),
        Case::get("blob, AWS GLOBAL range: default", blob(IN_BOTH), 307, local(&server, IN_BOTH)).header("x-forwarded-for", "23.228.249.9, 130.211.0.1"),
        Case::get("blob, GCP client: upstream", blob(IN_BOTH), 307, ar(&format!("pause/blobs/{IN_BOTH}"))).header("x-forwarded-for", GCP),
        Case::get("blob, GCP IPv6 client: upstream", blob(IN_BOTH), 307, ar(&format!("pause/blobs/{IN_BOTH}"))).header("x-forwarded-for", "2600:1900:4030::1, 130.211.0.1"),
        Case::get("blob, unparseable X-Forwarded-For", blob(IN_BOTH), 400, None).header("x-forwarded-for", "not-an-ip, 130.211.0.1"),
        Case::get("blob, empty X-Forwarded-For list", blob(IN_BOTH), 400, None).header("x-forwarded-for", " , "),
        Case::get("manifest, unparseable X-Forwarded-For", "/v2/pause/manifests/latest", 307, ar("pause/manifests/latest")).header("x-forwarded-for", "not-an-ip, 130.211.0.1"),
        Case::get("sha512 blob (not mirrored)", "/v2/pause/blobs/sha512:3b0998121425143be7164ea1555efbdf5b8a02ceedaa26e01910e7d017ff78ddbba27877bd42510a06cc14ac1bc6c451128ca3f0d0afba28b695e29b2702c9c7", 307, ar("pause/blobs/sha512:3b0998121425143be7164ea1555efbdf5b8a02ceedaa26e01910e7d017ff78ddbba27877bd42510a06cc14ac1bc6c451128ca3f0d0afba28b695e29b2702c9c7")).header("x-forwarded-for", AWS_EU_WEST_3),
        Case::get("blob uploads are not blobs", "/v2/pause/blobs/uploads/", 307, ar("pause/blobs/uploads")),
        Case::get("cosign tag without a signature upstream", format!("/v2/pause/manifests/{sig}"), 307, ar(&format!("pause/manifests/{sig}"))),
        Case::get("health", "/healthz", 200, None),
        Case::get("metrics", "/metrics", 200, None),
        Case::get("file mirror blob", format!("/_hoist/mirrors/local/containers/images/{IN_BOTH}"), 200, None),
        Case::get("file mirror, missing blob", format!("/_hoist/mirrors/local/containers/images/{NOWHERE}"), 404, None),
        Case::get("file mirror, not a file backend", format!("/_hoist/mirrors/s3-eu-west-3/containers/images/{IN_BOTH}"), 404, None),
        Case::get("file mirror, unknown backend", format!("/_hoist/mirrors/nope/containers/images/{IN_BOTH}"), 404, None),
        Case::get("file mirror, escape attempt", "/_hoist/mirrors/local/containers/images/..%2F..%2Fetc%2Fpasswd", 404, None),
        Case::get("file mirror, not a digest", "/_hoist/mirrors/local/containers/images/x", 404, None),
        Case::get("no layout upstream here", "/_hoist/upstream/v2/", 404, None),
    ];
    check_table(&server, &cases).await;
    // The API check carries the version header, and a redirect has no body.
    let response = client()
        .get(format!("{}/v2/", server.origin()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let response = client()
        .get(format!("{}{}", server.origin(), blob(IN_BOTH)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap().len(), 0);
}

/// archeio's `TestMakeV2Handler` setting: k8s.gcr.io upstream, no path, a signature upstream,
/// no trusted load balancer (so `X-Forwarded-For` is the client's word, ignored).
#[tokio::test]
async fn direct_with_a_signature_upstream() {
    let world = Mirrored::start().await;
    let mut config = ServeConfig::new(Upstream::parse(GCR).unwrap());
    config.signature_upstream = Some(AR.to_owned());
    config.regions = cloud_regions();
    config.mirrors = world.mirrors();
    let server = Running::start(config).await;
    let hex = &IN_BOTH[7..];
    let gcr = |rest: &str| Some(format!("{GCR}/v2/{rest}"));
    let signatures = |rest: &str| Some(format!("{AR}/v2/{rest}"));
    let cases = vec![
        Case::get(
            "manifest",
            "/v2/pause/manifests/latest",
            307,
            gcr("pause/manifests/latest"),
        ),
        Case::get("tags", "/v2/pause/tags/list", 307, gcr("pause/tags/list")),
        Case::get(
            "blob, X-Forwarded-For ignored: default mirror",
            blob(IN_BOTH),
            307,
            local(&server, IN_BOTH),
        )
        .header("x-forwarded-for", AWS_EU_WEST_3),
        Case::get(
            "blob, garbage X-Forwarded-For ignored",
            blob(IN_BOTH),
            307,
            local(&server, IN_BOTH),
        )
        .header("x-forwarded-for", "not-an-ip, x"),
        Case::get(
            "blob missing: upstream",
            blob(NOWHERE),
            307,
            gcr(&format!("pause/blobs/{NOWHERE}")),
        ),
        Case::get(
            ".sig",
            format!("/v2/pause/manifests/sha256-{hex}.sig"),
            307,
            signatures(&format!("pause/manifests/sha256-{hex}.sig")),
        ),
        Case::get(
            ".att",
            format!("/v2/pause/manifests/sha256-{hex}.att"),
            307,
            signatures(&format!("pause/manifests/sha256-{hex}.att")),
        ),
        Case::get(
            ".sig, HEAD",
            format!("/v2/pause/manifests/sha256-{hex}.sig"),
            307,
            signatures(&format!("pause/manifests/sha256-{hex}.sig")),
        )
        .method("HEAD"),
        Case::get(
            ".sig, nested name",
            format!("/v2/kubernetes/pause/manifests/sha256-{hex}.sig"),
            307,
            signatures(&format!("kubernetes/pause/manifests/sha256-{hex}.sig")),
        ),
        Case::get(
            ".sbom is not a signature",
            format!("/v2/pause/manifests/sha256-{hex}.sbom"),
            307,
            gcr(&format!("pause/manifests/sha256-{hex}.sbom")),
        ),
        Case::get(
            "signature by digest is a manifest",
            format!("/v2/pause/manifests/{IN_BOTH}"),
            307,
            gcr(&format!("pause/manifests/{IN_BOTH}")),
        ),
    ];
    check_table(&server, &cases).await;
}

/// Writes an IP range file mapping the loopback addresses to one region, in a given format.
pub fn loopback_ranges(directory: &Path, google: bool, region: &str) -> std::path::PathBuf {
    let (name, text) = if google {
        (
            "cloud.json",
            format!(
                r#"{{"syncToken": "1", "creationTime": "2026-01-01T00:00:00.000000", "prefixes": [
                  {{"ipv4Prefix": "127.0.0.0/8", "service": "Google Cloud", "scope": "{region}"}},
                  {{"ipv6Prefix": "::1/128", "service": "Google Cloud", "scope": "{region}"}}]}}"#
            ),
        )
    } else {
        (
            "ip-ranges.json",
            format!(
                r#"{{"syncToken": "1", "createDate": "2026-01-01-00-00-00", "prefixes": [
                  {{"ip_prefix": "127.0.0.0/8", "region": "{region}", "service": "AMAZON", "network_border_group": "{region}"}}],
                  "ipv6_prefixes": [
                  {{"ipv6_prefix": "::1/128", "region": "{region}", "service": "AMAZON", "network_border_group": "{region}"}}]}}"#
            ),
        )
    };
    let path = directory.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Region matching by the peer address itself: IP range files that place 127.0.0.0/8 in a cloud.
#[tokio::test]
async fn regions_of_loopback_peers() {
    let world = Mirrored::start().await;
    let files = tempfile::tempdir().unwrap();
    let upstream_blob = |digest: &str| Some(format!("{GCR}/v2/pause/blobs/{digest}"));
    for (google, upstream_cloud, expected) in [
        // AWS eu-west-3: its bucket.
        (false, Some("gcp"), Some(world.s3_url(IN_BOTH))),
        // Google: the upstream's own cloud, so the upstream.
        (true, Some("gcp"), upstream_blob(IN_BOTH)),
        // Google, but the upstream is in no cloud: no gcp mirror for eu-west-3, so the default.
        (true, None, None),
    ] {
        let ranges = loopback_ranges(files.path(), google, "eu-west-3");
        let mut regions = RegionMap::new();
        regions.load(&ranges).unwrap();
        let mut config = ServeConfig::new(Upstream::parse(GCR).unwrap());
        config.upstream_cloud = upstream_cloud.map(str::to_owned);
        config.regions = regions;
        config.mirrors = world.mirrors();
        let server = Running::start(config).await;
        let expected = expected.or_else(|| local(&server, IN_BOTH));
        check_table(
            &server,
            &[Case::get("loopback client", blob(IN_BOTH), 307, expected)],
        )
        .await;
        server.stop().await;
    }
}

/// The blobs of a file mirror come back as they are, with ranges and HEAD.
#[tokio::test]
async fn file_mirror_blobs() {
    let world = Mirrored::start().await;
    let mut config = ServeConfig::new(Upstream::parse(GCR).unwrap());
    config.mirrors = world.mirrors();
    let server = Running::start(config).await;
    let url = format!(
        "{}/_hoist/mirrors/local/containers/images/{ONLY_LOCAL}",
        server.origin()
    );
    let response = client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"only local");
    let response = client().head(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "10");
    let response = client()
        .get(&url)
        .header("range", "bytes=5-")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"local");
}
