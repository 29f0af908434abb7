//! Scale: `--registry-endpoint` (real registry names reached on 127.0.0.1), and `--shard I/N` /
//! `--shards N` for promote, mirror and audit: against registry:2, and on the real corpus served
//! by the registry double.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hoist_oci::Digest;
use hoist_plan::{EdgeSet, Shard};
use hoist_testkit::{
    DoubleOptions, ImageBuilder, RegistryDouble, RegistryOptions, RegistryServer, RequestKind,
    push, remove_some, twin_corpus, validate_copy, validate_tag,
};

use crate::support::{json, stdout, write};

/// `hoist ARGS` in `dir`, with `env` set, without a Docker config or a job index of the machine.
fn hoist_in(dir: &Path, args: &[String], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hoist"));
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .env_remove("JOB_COMPLETION_INDEX");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("hoist runs")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}

fn registry() -> RegistryServer {
    RegistryServer::start(RegistryOptions::plain()).expect("docker-registry starts")
}

#[tokio::test]
async fn registry_endpoints_reach_registries_by_their_real_names() {
    let (source, destination) = (registry(), registry());
    let dir = tempfile::tempdir().unwrap();
    let image = ImageBuilder::new(81).layers(&[30_000, 2_000]).build();
    let endpoint = source.endpoint();
    // The manifest names registries that do not resolve; only the endpoints reach them.
    write(
        dir.path(),
        "promoter-manifest.yaml",
        &format!(
            "registries:\n- name: gcr.io/k8s-staging-app\n  src: true\n\
             - name: us-west1-docker.pkg.dev/k8s-artifacts-prod/images\n\
             images:\n- name: app\n  dmap:\n    \"{}\": [\"v1\"]\n",
            image.digest()
        ),
    );
    let endpoints = [
        format!("gcr.io=http://{}", source.host()),
        format!("us-west1-docker.pkg.dev=http://{}", destination.host()),
    ];
    // The source repository is gcr.io/k8s-staging-app/app.
    push(
        &endpoint.client().unwrap(),
        &endpoint,
        "k8s-staging-app/app",
        &image,
        &["v1"],
    )
    .await
    .unwrap();
    let mut args = strings(&[
        "promote",
        "--manifest",
        "promoter-manifest.yaml",
        "--confirm",
    ]);
    args.extend(["--output".into(), "json".into()]);
    for endpoint in &endpoints {
        args.extend(["--registry-endpoint".into(), endpoint.clone()]);
    }
    let output = hoist_in(dir.path(), &args, &[]);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    assert_eq!(
        report["steps"][0]["registry"],
        "us-west1-docker.pkg.dev/k8s-artifacts-prod/images"
    );
    assert_eq!(report["execution"]["completed"], 1);
    let copy = validate_copy(
        &source.endpoint(),
        "k8s-staging-app/app",
        &destination.endpoint(),
        "k8s-artifacts-prod/images/app",
        image.digest(),
    )
    .await
    .expect("a faithful copy");
    assert_eq!(copy.blobs.len(), 3, "{copy:?}");
    validate_tag(
        &destination.endpoint(),
        "k8s-artifacts-prod/images/app",
        "v1",
        image.digest(),
    )
    .await
    .unwrap();
    // Without the mapping the name is looked up for real (and over TLS): nothing reaches the
    // local registry. A malformed mapping is a usage error that does not echo a password.
    let bad = hoist_in(
        dir.path(),
        &strings(&[
            "promote",
            "--manifest",
            "promoter-manifest.yaml",
            "--registry-endpoint",
            "gcr.io=http://user:hunter2@127.0.0.1:1/path",
        ]),
        &[],
    );
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("--registry-endpoint"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
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

#[test]
fn shards_partition_the_real_corpus_by_destination_repository() {
    let Some(corpus) = corpus() else {
        return;
    };
    let loaded = hoist_manifest::load(&[hoist_manifest::Input::Thin(corpus)]);
    let whole = EdgeSet::compute(&loaded.manifests);
    let used: BTreeSet<u32> = whole.edges.iter().map(|edge| edge.destination).collect();
    let key = |edge: &hoist_plan::Edge| (edge.origin, edge.destination, edge.tag);
    let mut expected: Vec<_> = whole.edges.iter().map(key).collect();
    expected.sort_unstable();
    for count in [2, 4, 8, 16] {
        let mut union = Vec::new();
        let mut owner: BTreeMap<String, u32> = BTreeMap::new();
        let mut sizes = Vec::new();
        for index in 0..count {
            let shard = Shard::new(index, count).unwrap();
            let mut part = whole.clone();
            part.retain_shard(&shard);
            let repositories: BTreeSet<String> = part
                .edges
                .iter()
                .map(|edge| part.destination(edge).to_string())
                .collect();
            for repository in &repositories {
                if let Some(other) = owner.insert(repository.clone(), index) {
                    panic!("{repository} is in shards {other} and {index} of {count}");
                }
            }
            sizes.push((repositories.len(), part.edges.len()));
            union.extend(part.edges.iter().map(key));
        }
        union.sort_unstable();
        assert_eq!(
            union, expected,
            "the shards of {count} add up to the whole, once"
        );
        assert_eq!(
            owner.len(),
            used.len(),
            "every destination repository has a shard"
        );
        let (largest_repositories, _) = *sizes.iter().max().unwrap();
        let largest_edges = sizes.iter().map(|(_, edges)| *edges).max().unwrap();
        let share = largest_repositories as f64 / used.len() as f64;
        println!(
            "{count} shards of {} destination repositories ({} edges): the largest has {largest_repositories} \
             repositories ({:.1}% of them, ideal {:.1}%) and {largest_edges} edges ({:.1}%)",
            used.len(),
            whole.edges.len(),
            share * 100.0,
            100.0 / f64::from(count),
            largest_edges as f64 / whole.edges.len() as f64 * 100.0
        );
        assert!(
            share < 1.5 / f64::from(count),
            "the hash spreads repositories evenly: {share}"
        );
    }
}

/// Steps of a promote JSON report as (registry/image, digest, action, tags).
fn steps(report: &serde_json::Value) -> BTreeSet<(String, String, String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            (
                format!(
                    "{}/{}",
                    step["registry"].as_str().unwrap(),
                    step["image"].as_str().unwrap()
                ),
                step["digest"].as_str().unwrap().to_owned(),
                step["action"].as_str().unwrap().to_owned(),
                step["tags"].to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_dry_runs_of_the_real_corpus_add_up_to_the_whole_plan() {
    let Some(corpus) = corpus() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    let twin = twin_corpus(&corpus, &tree).expect("the corpus copies");
    let sources = twin.sources;
    let mut population = twin.population;
    // Something to do in two regions, so the plan is not empty.
    let mut missing = remove_some(&mut population, "europe-west1-docker.pkg.dev", 100);
    missing.extend(remove_some(&mut population, "us-east4-docker.pkg.dev", 150));
    let double = RegistryDouble::start(population, DoubleOptions::default())
        .await
        .unwrap();
    let mut base = vec![
        "promote".to_owned(),
        "--thin-manifest-dir".to_owned(),
        tree.display().to_string(),
        "--output".to_owned(),
        "json".to_owned(),
        "--quiet".to_owned(),
    ];
    for (host, url) in double.urls() {
        base.extend(["--registry-endpoint".into(), format!("{host}={url}")]);
    }
    let run = |extra: Vec<String>, env: Vec<(&'static str, String)>| {
        let mut args = base.clone();
        args.extend(extra);
        let dir = work.path().to_owned();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            hoist_in(&dir, &args, &env)
        })
    };

    let whole = run(Vec::new(), Vec::new()).await.unwrap();
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let whole_report = json(&whole);
    let whole_steps = steps(&whole_report);
    let expected: BTreeSet<(String, String)> = missing
        .iter()
        .map(|removed| (removed.repository.clone(), removed.digest.to_string()))
        .collect();
    let copies: BTreeSet<(String, String)> = whole_steps
        .iter()
        .map(|(repository, digest, action, _)| {
            assert_eq!(action, "copy");
            (repository.clone(), digest.clone())
        })
        .collect();
    assert_eq!(
        copies, expected,
        "the whole plan copies exactly what is missing"
    );
    let listed_whole = double.counts().of(RequestKind::TagList);

    let count = 3;
    let mut union = BTreeSet::new();
    let mut owner: BTreeMap<String, u32> = BTreeMap::new();
    let mut shares = Vec::new();
    for index in 0..count {
        double.reset_counts();
        // Shard 0 as a Kubernetes Indexed Job pod would run it; the others by I/N.
        let output = if index == 0 {
            run(
                vec!["--shards".into(), count.to_string()],
                vec![("JOB_COMPLETION_INDEX", index.to_string())],
            )
        } else {
            run(
                vec!["--shard".into(), format!("{index}/{count}")],
                Vec::new(),
            )
        }
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "shard {index}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report = json(&output);
        assert_eq!(report["shard"]["index"], index);
        assert_eq!(report["shard"]["count"], count);
        shares.push(report["shard"]["repositories"].as_u64().unwrap());
        let part = steps(&report);
        assert!(
            union.is_disjoint(&part),
            "shard {index} repeats another's steps"
        );
        union.extend(part);
        // On the wire: every repository this shard read, no other shard read.
        for repository in double.counts().by_repository.into_keys() {
            if sources.contains(&repository) {
                continue; // read for the copies a shard plans
            }
            if let Some(other) = owner.insert(repository.clone(), index) {
                panic!("{repository} was read by shards {other} and {index}");
            }
        }
    }
    assert_eq!(
        union, whole_steps,
        "the shards' plans add up to the whole plan"
    );
    assert_eq!(
        owner.len() as u64,
        listed_whole,
        "together the shards read every destination repository once"
    );
    let total: u64 = shares.iter().sum();
    let largest = *shares.iter().max().unwrap();
    println!(
        "{count} shards: {shares:?} destination repositories; the largest has {:.1}% (ideal {:.1}%)",
        largest as f64 / total as f64 * 100.0,
        100.0 / f64::from(count)
    );
    assert_eq!(total, listed_whole);
}

#[test]
fn shard_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "m.yaml",
        "registries:\n- name: oci:src\n  src: true\n- name: oci:dst\nimages: []\n",
    );
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = strings(&["promote", "--manifest", "m.yaml"]);
        args.extend(strings(extra));
        hoist_in(dir.path(), &args, env)
    };
    for (extra, env, message) in [
        (&["--shard", "3/3"][..], &[][..], "does not exist"),
        (&["--shard", "x"][..], &[][..], "I/N"),
        (&["--shards", "4"][..], &[][..], "JOB_COMPLETION_INDEX"),
        (
            &["--shards", "4"][..],
            &[("JOB_COMPLETION_INDEX", "4")][..],
            "does not exist",
        ),
        (
            &["--shard", "0/2", "--shards", "2"][..],
            &[][..],
            "cannot be used with",
        ),
    ] {
        let output = run(extra, env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
    }
    let ok = run(&["--shards", "2"], &[("JOB_COMPLETION_INDEX", "1")]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout(&ok).contains("shard 1/2"), "{}", stdout(&ok));
}

#[tokio::test]
async fn mirror_and_audit_shards_split_blobs_and_repositories() {
    let (source, destination) = (registry(), registry());
    let dir = tempfile::tempdir().unwrap();
    let shared = hoist_testkit::Layer::random(900, 20_000);
    let images: Vec<_> = (0..6)
        .map(|seed| {
            ImageBuilder::new(90 + seed)
                .shared_layer(&shared)
                .layers(&[5_000 + seed * 100, 700])
                .build()
        })
        .collect();
    let mut text = format!(
        "registries:\n- name: {}/staging\n  src: true\n- name: {}/prod\nimages:\n",
        source.host(),
        destination.host()
    );
    for (index, image) in images.iter().enumerate() {
        let endpoint = source.endpoint();
        push(
            &endpoint.client().unwrap(),
            &endpoint,
            &format!("staging/app{index}"),
            image,
            &["v1"],
        )
        .await
        .unwrap();
        text.push_str(&format!(
            "- name: app{index}\n  dmap:\n    \"{}\": [\"v1\"]\n",
            image.digest()
        ));
    }
    write(dir.path(), "promoter-manifest.yaml", &text);
    write(
        dir.path(),
        "backends.yaml",
        "backends:\n- name: local\n  url: file:mirror\n",
    );
    let common = |command: &str| {
        let mut args = strings(&[
            command,
            "--manifest",
            "promoter-manifest.yaml",
            "--output",
            "json",
        ]);
        for host in [source.host(), destination.host()] {
            args.extend(["--insecure-registry".into(), host.to_owned()]);
        }
        args
    };
    // Registries first, whole.
    let mut promote = common("promote");
    promote.push("--confirm".into());
    let output = hoist_in(dir.path(), &promote, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let all_blobs: BTreeSet<Digest> = images
        .iter()
        .flat_map(|image| image.blobs().into_iter().map(|blob| blob.digest()))
        .collect();
    let mirror_dir = dir.path().join("mirror/containers/images");
    let held = || -> BTreeSet<String> {
        std::fs::read_dir(&mirror_dir)
            .map(|entries| {
                entries
                    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let count = 3;
    let mut written_total = 0;
    for index in 0..count {
        let before = held();
        let mut args = common("mirror");
        args.extend(strings(&[
            "--backends",
            "backends.yaml",
            "--confirm",
            "--shard",
        ]));
        args.push(format!("{index}/{count}"));
        let output = hoist_in(dir.path(), &args, &[]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report = json(&output);
        assert_eq!(report["shard"]["index"], index);
        let after = held();
        let new: Vec<&String> = after.difference(&before).collect();
        let shard = Shard::new(index, count).unwrap();
        for name in &new {
            let digest = Digest::parse(name).unwrap();
            assert!(shard.owns_blob(&digest), "shard {index} wrote {name}");
        }
        let written = report["mirrors"]["backends"][0]["to_write"]
            .as_u64()
            .unwrap();
        assert_eq!(written as usize, new.len());
        written_total += new.len();
    }
    let names: BTreeSet<String> = all_blobs.iter().map(ToString::to_string).collect();
    assert_eq!(held(), names, "together the shards wrote every blob");
    assert_eq!(written_total, all_blobs.len(), "each blob once");

    // Audits: each shard checks its repositories and its blobs; together, everything, once.
    let mut audit = common("audit");
    audit.extend(strings(&["--backends", "backends.yaml"]));
    let whole = json(&hoist_in(dir.path(), &audit, &[]));
    assert_eq!(whole["ok"], true, "{whole}");
    let registry_rows = |report: &serde_json::Value| -> BTreeSet<String> {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| row["kind"] == "registry")
            .map(|row| format!("{}/{}@{}", row["backend"], row["image"], row["digest"]))
            .collect()
    };
    let mut union = BTreeSet::new();
    for index in 0..count {
        let mut args = audit.clone();
        args.extend(["--shard".into(), format!("{index}/{count}")]);
        let output = hoist_in(dir.path(), &args, &[]);
        assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
        let part = registry_rows(&json(&output));
        assert!(union.is_disjoint(&part));
        union.extend(part);
    }
    assert_eq!(union, registry_rows(&whole));
    // A blob gone from the mirror is found by the one shard that owns it.
    let victim = all_blobs.iter().next().unwrap();
    std::fs::remove_file(mirror_dir.join(victim.to_string())).unwrap();
    let owner = Shard::of_blob(victim, count);
    for index in 0..count {
        let mut args = audit.clone();
        args.extend(["--shard".into(), format!("{index}/{count}")]);
        let output = hoist_in(dir.path(), &args, &[]);
        let expected = if index == owner { 1 } else { 0 };
        assert_eq!(
            output.status.code(),
            Some(expected),
            "shard {index}: {}",
            stdout(&output)
        );
    }
}
