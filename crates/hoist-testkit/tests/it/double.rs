//! The registry double: the distribution reads a promoter needs, paging, the GCR `manifest` map,
//! routing by port and by `Host`, latency, the 429 quota and the request counts, checked with a
//! plain HTTP client; then the real corpus, served "already promoted".

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hoist_oci::Digest;
use hoist_testkit::{
    DoubleOptions, DoubleQuota, Population, RegistryDouble, RequestKind, remove_some, twin_corpus,
};

const MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Two hosts: `a.example` with one repository of five tags (two on one digest) and an untagged
/// manifest, `b.example` with another repository.
fn population() -> (Population, Vec<Digest>) {
    let mut population = Population::new();
    let digests: Vec<Digest> = (0..4)
        .map(|index| {
            population.add_body(
                MEDIA_TYPE,
                format!("{{\"schemaVersion\":2,\"n\":{index}}}").into_bytes(),
            )
        })
        .collect();
    population.insert("a.example/team/app", digests[0], &["v1", "latest"]);
    population.insert("a.example/team/app", digests[1], &["v2"]);
    population.insert("a.example/team/app", digests[2], &["v3", "v4"]);
    population.insert("a.example/team/app", digests[3], &[]);
    population.insert("b.example/other", digests[0], &["only"]);
    (population, digests)
}

async fn start(options: DoubleOptions) -> (RegistryDouble, Vec<Digest>) {
    let (population, digests) = population();
    let double = RegistryDouble::start(population, options)
        .await
        .expect("the double starts");
    (double, digests)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follows `Link: <...>; rel="next"` from `url`, returning every page's JSON.
async fn pages(client: &reqwest::Client, base: &str, path: &str) -> Vec<serde_json::Value> {
    let mut next = Some(path.to_owned());
    let mut pages = Vec::new();
    while let Some(path) = next.take() {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        next = response.headers().get("link").map(|link| {
            let link = link.to_str().unwrap();
            assert!(link.ends_with("; rel=\"next\""), "{link}");
            link[link.find('<').unwrap() + 1..link.find('>').unwrap()].to_owned()
        });
        pages.push(response.json().await.unwrap());
        assert!(pages.len() < 10, "the pages never end");
    }
    pages
}

#[tokio::test]
async fn lists_tags_with_the_manifest_map_in_pages() {
    let (double, digests) = start(DoubleOptions {
        page_size: Some(2),
        ..DoubleOptions::default()
    })
    .await;
    let base = double.url("a.example").unwrap();
    let client = client();
    let pages = pages(&client, &base, "/v2/team/app/tags/list").await;
    assert_eq!(pages.len(), 3, "5 tags, 2 per page: {pages:?}");
    let mut tags = Vec::new();
    let mut map = std::collections::BTreeMap::new();
    for page in &pages {
        assert_eq!(page["name"], "team/app");
        tags.extend(
            page["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|tag| tag.as_str().unwrap().to_owned()),
        );
        for (digest, entry) in page["manifest"].as_object().unwrap() {
            let entry_tags: Vec<String> = entry["tag"]
                .as_array()
                .unwrap()
                .iter()
                .map(|tag| tag.as_str().unwrap().to_owned())
                .collect();
            map.entry(digest.clone())
                .or_insert_with(Vec::new)
                .extend(entry_tags);
            assert_eq!(entry["mediaType"], MEDIA_TYPE);
        }
    }
    assert_eq!(
        tags,
        ["latest", "v1", "v2", "v3", "v4"],
        "sorted, each once"
    );
    assert_eq!(map[&digests[0].to_string()], ["latest", "v1"]);
    assert_eq!(map[&digests[2].to_string()], ["v3", "v4"]);
    assert_eq!(
        map[&digests[3].to_string()],
        Vec::<String>::new(),
        "the untagged manifest is listed, with no tags"
    );
    // A client asking for fewer per page gets fewer; one asking for more gets the double's size.
    let small = pages_of(&client, &base, "/v2/team/app/tags/list?n=1").await;
    assert_eq!(small, 5);
    let counts = double.counts();
    assert_eq!(counts.of(RequestKind::TagList), 3 + 5);
    assert_eq!(counts.by_repository["a.example/team/app"], 8);
    assert_eq!(counts.throttled, 0);
}

async fn pages_of(client: &reqwest::Client, base: &str, path: &str) -> usize {
    pages(client, base, path).await.len()
}

#[tokio::test]
async fn one_page_by_default_and_unknown_repositories_are_404() {
    let (double, _) = start(DoubleOptions::default()).await;
    let client = client();
    let base = double.url("a.example").unwrap();
    let listing = pages(&client, &base, "/v2/team/app/tags/list").await;
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0]["tags"].as_array().unwrap().len(), 5);
    let missing = client
        .get(format!("{base}/v2/team/nothing/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "NAME_UNKNOWN");
    // Without the map, a listing is only tags (registry:2 style).
    double.set_options(DoubleOptions {
        manifest_map: false,
        ..DoubleOptions::default()
    });
    let plain = pages(&client, &base, "/v2/team/app/tags/list").await;
    assert!(plain[0].get("manifest").is_none(), "{plain:?}");
}

#[tokio::test]
async fn serves_manifests_by_tag_and_digest() {
    let (double, digests) = start(DoubleOptions::default()).await;
    let client = client();
    let base = double.url("a.example").unwrap();
    for reference in ["v2".to_owned(), digests[1].to_string()] {
        let url = format!("{base}/v2/team/app/manifests/{reference}");
        let head = client.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200, "{reference}");
        assert_eq!(
            head.headers()["docker-content-digest"],
            digests[1].to_string().as_str()
        );
        assert_eq!(head.headers()["content-type"], MEDIA_TYPE);
        let length: u64 = head.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let get = client.get(&url).send().await.unwrap();
        assert_eq!(get.status(), 200);
        let bytes = get.bytes().await.unwrap();
        assert_eq!(
            Digest::of(&bytes),
            digests[1],
            "the bytes hash to the digest"
        );
        assert_eq!(bytes.len() as u64, length, "HEAD says the GET's length");
    }
    // An untagged manifest by digest; a digest of another repository is not here.
    let untagged = format!("{base}/v2/team/app/manifests/{}", digests[3]);
    assert_eq!(client.head(&untagged).send().await.unwrap().status(), 200);
    let elsewhere = format!(
        "{}/v2/other/manifests/{}",
        double.url("b.example").unwrap(),
        digests[1]
    );
    let response = client.head(&elsewhere).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        client
            .get(format!("{base}/v2/team/app/manifests/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Read-only: writes are refused.
    let put = client
        .put(format!("{base}/v2/team/app/manifests/v9"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
    let counts = double.counts();
    assert_eq!(counts.of(RequestKind::HeadTag), 1);
    assert_eq!(counts.of(RequestKind::HeadDigest), 3);
    assert_eq!(counts.of(RequestKind::GetTag), 2);
    assert_eq!(counts.of(RequestKind::GetDigest), 1);
    assert_eq!(counts.of(RequestKind::Other), 1);
    assert_eq!(counts.by_host["b.example"], 1);
    assert_eq!(counts.total, 8);
    double.reset_counts();
    assert_eq!(double.counts().total, 0);
}

#[tokio::test]
async fn one_process_serves_every_host_by_port_or_host_header() {
    let (double, _) = start(DoubleOptions::default()).await;
    let client = client();
    let ping = client
        .get(format!("{}/v2/", double.url("b.example").unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);
    assert_eq!(
        ping.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    // Each host's port holds that host's repositories only.
    let wrong_port = client
        .get(format!(
            "{}/v2/other/tags/list",
            double.url("a.example").unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_port.status(), 404);
    // The routed port chooses by Host, with or without a port in it.
    let routed = format!("http://{}/v2/other/tags/list", double.routed_address());
    for host in ["b.example", "b.example:443"] {
        let response = client
            .get(&routed)
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["tags"][0], "only");
    }
    let unknown = client
        .get(&routed)
        .header("host", "c.example")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(double.counts().by_host["b.example"], 3);
    assert!(double.url("c.example").is_none());
}

#[tokio::test]
async fn answers_after_the_latency() {
    let latency = Duration::from_millis(150);
    let (double, _) = start(DoubleOptions {
        latency,
        ..DoubleOptions::default()
    })
    .await;
    let client = client();
    let url = format!(
        "{}/v2/team/app/manifests/v1",
        double.url("a.example").unwrap()
    );
    let started = Instant::now();
    let response = client.head(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_host_over_its_quota_answers_429_with_retry_after() {
    let (double, _) = start(DoubleOptions {
        quota: Some(DoubleQuota {
            requests: 3,
            per: Duration::from_secs(60),
        }),
        ..DoubleOptions::default()
    })
    .await;
    let client = client();
    let a = format!(
        "{}/v2/team/app/manifests/v1",
        double.url("a.example").unwrap()
    );
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(client.head(&a).send().await.unwrap());
    }
    let codes: Vec<u16> = statuses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(codes, [200, 200, 200, 429, 429]);
    let retry_after: u64 = statuses[3].headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=60).contains(&retry_after),
        "the rest of the window: {retry_after}"
    );
    // The quota is per host: another host is not affected.
    let b = format!(
        "{}/v2/other/manifests/only",
        double.url("b.example").unwrap()
    );
    assert_eq!(client.head(&b).send().await.unwrap().status(), 200);
    let counts = double.counts();
    assert_eq!(counts.throttled, 2);
    assert_eq!(counts.of(RequestKind::HeadTag), 4, "answered ones only");
    assert_eq!(counts.total, 6);
    assert_eq!(counts.peak_per_window, 5);
    // A short window opens again.
    double.set_options(DoubleOptions {
        quota: Some(DoubleQuota {
            requests: 1,
            per: Duration::from_millis(200),
        }),
        ..DoubleOptions::default()
    });
    double.reset_counts();
    assert_eq!(client.head(&a).send().await.unwrap().status(), 200);
    assert_eq!(client.head(&a).send().await.unwrap().status(), 429);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.head(&a).send().await.unwrap().status(), 200);
}

/// `<repo>/../shared/corpus/k8s.io/registry.k8s.io`, if present.
fn corpus() -> Option<PathBuf> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/k8s.io/registry.k8s.io");
    if path.is_dir() {
        Some(path)
    } else {
        println!("skipping: the k8s.io corpus is not at {}", path.display());
        None
    }
}

#[tokio::test]
async fn serves_the_real_corpus_already_promoted() {
    let Some(corpus) = corpus() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    let twin = twin_corpus(&corpus, &tree).expect("the corpus copies");
    println!(
        "{} projects kept, dropped {:?}",
        twin.projects.len(),
        twin.dropped
            .iter()
            .map(|(project, _)| project)
            .collect::<Vec<_>>()
    );
    assert!(twin.projects.len() > 50, "{}", twin.projects.len());
    // Only projects with load errors are left out, each with its reason.
    for (project, reason) in &twin.dropped {
        assert!(reason.contains("error"), "{project}: {reason}");
        assert!(!tree.join("images").join(project).exists());
    }
    // The copy keeps every line where it was; only digests change, to their twins.
    let original =
        std::fs::read_to_string(corpus.join("images/k8s-staging-kubernetes/images.yaml")).unwrap();
    let copied =
        std::fs::read_to_string(tree.join("images/k8s-staging-kubernetes/images.yaml")).unwrap();
    assert_eq!(original.lines().count(), copied.lines().count());
    let (line, twin_line) = original
        .lines()
        .zip(copied.lines())
        .find(|(line, _)| line.contains("sha256:"))
        .unwrap();
    let digest = Digest::parse(&line[line.find("sha256:").unwrap()..][..71]).unwrap();
    let expected = twin.twins[&digest];
    assert_eq!(twin_line, line.replace(&digest.hex(), &expected.hex()));

    // Every destination of `conformance` holds that twin, under its tags, and serves its bytes.
    let mut population = twin.population;
    let (repositories, manifests) = population.size();
    println!("{repositories} repositories, {manifests} (repository, manifest) pairs");
    let holding: Vec<String> = population
        .repositories()
        .filter(|(_, path, repository)| {
            path.ends_with("/conformance") && repository.manifests.contains(&expected)
        })
        .map(|(host, path, _)| format!("{host}/{path}"))
        .collect();
    assert!(
        holding.len() >= 22,
        "the source and every region: {holding:?}"
    );
    let hosts: BTreeSet<&str> = holding
        .iter()
        .map(|r| r.split('/').next().unwrap())
        .collect();
    assert!(hosts.contains("gcr.io"), "the source too: {hosts:?}");

    // One percent of one region goes missing; the double then says so.
    let region = "europe-west1-docker.pkg.dev";
    let region_manifests: usize = population
        .repositories()
        .filter(|(host, _, _)| *host == region)
        .map(|(_, _, repository)| repository.manifests.len())
        .sum();
    let removed = remove_some(&mut population, region, 100);
    let share = removed.len() as f64 / region_manifests as f64;
    println!(
        "removed {} of {region_manifests} in {region}",
        removed.len()
    );
    assert!((0.005..0.02).contains(&share), "about 1%: {share}");
    let double = RegistryDouble::start(population, DoubleOptions::default())
        .await
        .unwrap();
    let client = client();
    let gone = &removed[0];
    let (host, path) = gone.repository.split_once('/').unwrap();
    let base = double.url(host).unwrap();
    let head = client
        .head(format!("{base}/v2/{path}/manifests/{}", gone.digest))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404, "{gone:?}");
    let listing: serde_json::Value = client
        .get(format!("{base}/v2/{path}/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for tag in &gone.tags {
        assert!(
            !listing["tags"].as_array().unwrap().iter().any(|t| t == tag),
            "{tag} went with its digest"
        );
    }
    assert!(listing["manifest"].get(gone.digest.to_string()).is_none());
    // A repository elsewhere still has it, and its bytes are the twin's.
    let source = holding.iter().find(|r| r.starts_with("gcr.io/")).unwrap();
    let (source_host, source_path) = source.split_once('/').unwrap();
    let bytes = client
        .get(format!(
            "{}/v2/{source_path}/manifests/{expected}",
            double.url(source_host).unwrap()
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(Digest::of(&bytes), expected);
    assert!(String::from_utf8_lossy(&bytes).contains(&digest.to_string()));
}
