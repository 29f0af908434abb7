//! The network flags end to end: `--idle-timeout` against a registry that never answers,
//! `--max-rps` parsing, a promotion through a registry quota (few 429s), and a crafted nested
//! index that must not cost 2^depth requests.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hoist_oci::{Digest, media_types};
use hoist_testkit::{
    FaultProxy, Faults, ImageBuilder, Quota, RegistryOptions, RegistryServer, SilentServer, push,
    push_manifest, validate_copy,
};

use crate::support::write;

fn registry() -> RegistryServer {
    RegistryServer::start(RegistryOptions::plain()).expect("docker-registry starts")
}

/// Runs `hoist ARGS` in `dir`, every host of `insecure` spoken to over plain HTTP.
fn hoist(dir: &Path, args: &[&str], insecure: &[String]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("DOCKER_CONFIG", dir.join("no-docker-config"));
    for host in insecure {
        command.arg("--insecure-registry").arg(host);
    }
    command.output().expect("hoist runs")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("an exit code")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A plain manifest promoting `images` (name, digest, tags) from `source/staging` to each
/// `destination/prod`.
fn manifest(
    dir: &Path,
    source: &str,
    destinations: &[String],
    images: &[(String, Digest, Vec<String>)],
) -> PathBuf {
    let mut text = format!("registries:\n- name: {source}/staging\n  src: true\n");
    for destination in destinations {
        text.push_str(&format!("- name: {destination}/prod\n"));
    }
    text.push_str("images:\n");
    for (name, digest, tags) in images {
        let tags: Vec<String> = tags.iter().map(|tag| format!("\"{tag}\"")).collect();
        text.push_str(&format!(
            "- name: {name}\n  dmap:\n    \"{digest}\": [{}]\n",
            tags.join(", ")
        ));
    }
    write(dir, "promoter-manifest.yaml", &text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_flag_gives_up_a_silent_registry() {
    let silent = SilentServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = silent.host().to_owned();
    let started = Instant::now();
    let output = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        let host = host.clone();
        move || {
            hoist(
                &dir,
                &["snapshot", &format!("{host}/app"), "--idle-timeout", "1"],
                std::slice::from_ref(&host),
            )
        }
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(code(&output), 3, "{}", text(&output));
    assert!(text(&output).contains("idle timeout"), "{}", text(&output));
    // One idle period, not the default minute, and no retries of the silence.
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
    assert!(silent.accepted() >= 1);
}

#[test]
fn network_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        &["--max-rps", "registry.example"][..],
        &["--max-rps", "registry.example=0"],
        &["--max-rps", "=3"],
        &["--idle-timeout", "0"],
        &["--idle-timeout", "soon"],
        &["--connect-timeout", "-1"],
    ] {
        let mut args = vec!["snapshot", "registry.example/app"];
        args.extend_from_slice(bad);
        let output = hoist(dir.path(), &args, &[]);
        assert_eq!(code(&output), 2, "{bad:?}: {}", text(&output));
    }
    let help = hoist(dir.path(), &["promote", "--help"], &[]);
    for flag in ["--idle-timeout", "--connect-timeout", "--max-rps"] {
        assert!(text(&help).contains(flag), "{flag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_through_a_registry_quota_finishes_with_few_429s() {
    let source = registry();
    let destination = registry();
    // The destination is 40 ms away and serves 6 requests at once; beyond, 429.
    let proxy = FaultProxy::start(
        &destination.host(),
        Faults::none()
            .latency(Duration::from_millis(20))
            .quota(Quota::concurrent(6)),
    )
    .await
    .unwrap();
    let endpoint = source.endpoint();
    let client = endpoint.client().unwrap();
    let mut images = Vec::new();
    for number in 0..8u64 {
        let image = ImageBuilder::new(200 + number)
            .layers(&[20_000, 30_000, 40_000])
            .build();
        let name = format!("app{number}");
        push(&client, &endpoint, &format!("staging/{name}"), &image, &[])
            .await
            .unwrap();
        images.push((name, image.digest(), vec!["v1".to_owned()]));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(dir.path(), &source.host(), &[proxy.host()], &images);
    let insecure = [source.host(), proxy.host()];
    let output = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        let path = path.clone();
        move || {
            hoist(
                &dir,
                &[
                    "promote",
                    "--manifest",
                    path.to_str().unwrap(),
                    "--confirm",
                    "--quiet",
                    "--jobs",
                    "8",
                ],
                &insecure,
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output));
    let requests = proxy.request_count();
    let throttled = proxy.over_quota_count();
    eprintln!("{requests} requests through the quota, {throttled} answered 429");
    assert!(
        throttled * 10 <= requests,
        "{throttled} 429s among {requests} requests"
    );
    for (name, digest, _) in &images {
        validate_copy(
            &source.endpoint(),
            &format!("staging/{name}"),
            &destination.endpoint(),
            &format!("prod/{name}"),
            *digest,
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_listed_twice_at_every_level_is_read_once() {
    const DEPTH: usize = 12;
    let source = registry();
    let destination = registry();
    let endpoint = source.endpoint();
    let client = endpoint.client().unwrap();
    let leaf = ImageBuilder::new(300).layer(1000).build();
    push(&client, &endpoint, "staging/nested", &leaf, &[])
        .await
        .unwrap();
    // Each level is an index listing the level below twice: 2^12 paths to the leaf.
    let (mut child, mut child_type, mut child_size) = (
        leaf.digest(),
        leaf.media_type().to_owned(),
        leaf.raw_manifest.len(),
    );
    for level in 0..DEPTH {
        let entry =
            format!(r#"{{"mediaType":"{child_type}","digest":"{child}","size":{child_size}}}"#);
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{entry},{entry}],"annotations":{{"level":"{level}"}}}}"#,
            media_types::OCI_INDEX
        );
        let digest = Digest::of(index.as_bytes());
        push_manifest(
            &client,
            &endpoint,
            "staging/nested",
            &digest.to_string(),
            media_types::OCI_INDEX,
            Bytes::from(index.clone()),
        )
        .await
        .unwrap();
        (child, child_type, child_size) = (digest, media_types::OCI_INDEX.to_owned(), index.len());
    }
    let dir = tempfile::tempdir().unwrap();
    let images = [("nested".to_owned(), child, vec!["v1".to_owned()])];
    let path = manifest(dir.path(), &source.host(), &[destination.host()], &images);
    let insecure = [source.host(), destination.host()];
    let before = source.request_count();
    let output = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        let path = path.clone();
        let insecure = insecure.clone();
        move || {
            hoist(
                &dir,
                &[
                    "promote",
                    "--manifest",
                    path.to_str().unwrap(),
                    "--output",
                    "json",
                ],
                &insecure,
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let read = source.request_count() - before;
    // The root, twelve indexes and the leaf, each once: not 2^12.
    assert!(
        read <= 2 * (DEPTH + 2),
        "the dry run read the source {read} times"
    );
    let totals = &plan["totals"][format!("{}/prod", destination.host())];
    assert_eq!(totals["copies"], 1, "{plan}");
    assert_eq!(totals["manifests"], DEPTH as u64 + 1, "{plan}");

    let output = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || {
            hoist(
                &dir,
                &[
                    "promote",
                    "--manifest",
                    path.to_str().unwrap(),
                    "--confirm",
                    "--quiet",
                ],
                &insecure,
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output));
    let total = source.request_count() - before;
    assert!(
        total < 200,
        "the whole promotion read the source {total} times"
    );
    validate_copy(
        &source.endpoint(),
        "staging/nested",
        &destination.endpoint(),
        "prod/nested",
        child,
    )
    .await
    .unwrap();
}
