//! `hoist promote --rehearse`: every image into the local cluster registry named by the
//! KEP-1755 ConfigMaps that kind's documented script, ctlptl and k3d write
//! (`tests/fixtures/local-registry-hosting/`), each pointed at a real registry:2 on 127.0.0.1.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use hoist_oci::Digest;
use hoist_testkit::{
    Image, ImageBuilder, RegistryOptions, RegistryServer, push, validate_copy, validate_tag,
};

use crate::support::{json, stdout, write};

fn registry() -> RegistryServer {
    RegistryServer::start(RegistryOptions::plain()).expect("docker-registry starts")
}

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/local-registry-hosting")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path:?}: {error}"))
}

/// The fixture with its `host` (`localhost:PORT` in every fixture) pointed at `host`.
fn pointed_at(name: &str, fixture_host: &str, host: &str) -> String {
    let text = fixture(name);
    assert!(
        text.contains(fixture_host),
        "{name} has host {fixture_host}"
    );
    text.replace(fixture_host, host)
}

struct World {
    source: RegistryServer,
    dir: tempfile::TempDir,
    images: Vec<(&'static str, Image, Vec<&'static str>)>,
}

impl World {
    async fn start() -> Self {
        let source = registry();
        let multi = ImageBuilder::new(31)
            .layers(&[120_000, 40_000])
            .build_multi_arch();
        let single = ImageBuilder::new(32)
            .format(hoist_testkit::Format::Docker)
            .layer(60_000)
            .build();
        let untagged = ImageBuilder::new(33).layer(10_000).build();
        let images = vec![
            ("coredns", multi, vec!["v1.11.1", "latest"]),
            ("kube-proxy", single, vec!["v1.30.0"]),
            ("kube-proxy", untagged, vec![]),
        ];
        let endpoint = source.endpoint();
        let client = endpoint.client().unwrap();
        for (name, image, tags) in &images {
            let pushed_tags: Vec<&str> = tags.iter().take(1).copied().collect();
            push(
                &client,
                &endpoint,
                &format!("k8s-staging/{name}"),
                image,
                &pushed_tags,
            )
            .await
            .expect("push");
        }
        let world = Self {
            source,
            dir: tempfile::tempdir().unwrap(),
            images,
        };
        world.manifest();
        world
    }

    /// A manifest promoting every image to two production registries, which a rehearsal never
    /// contacts (their names do not even resolve).
    fn manifest(&self) -> PathBuf {
        let mut text = format!(
            "registries:\n- name: {}/k8s-staging\n  src: true\n\
             - name: us-central1-docker.pkg.dev.invalid/k8s-artifacts-prod/images\n\
             - name: europe-west1-docker.pkg.dev.invalid/k8s-artifacts-prod/images\nimages:\n",
            self.source.host()
        );
        for name in ["coredns", "kube-proxy"] {
            text.push_str(&format!("- name: {name}\n  dmap:\n"));
            for (_, image, tags) in self.images.iter().filter(|(n, _, _)| *n == name) {
                let tags: Vec<String> = tags.iter().map(|tag| format!("\"{tag}\"")).collect();
                text.push_str(&format!(
                    "    \"{}\": [{}]\n",
                    image.digest(),
                    tags.join(", ")
                ));
            }
        }
        write(self.dir.path(), "promoter-manifest.yaml", &text)
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `hoist promote --manifest promoter-manifest.yaml --rehearse ARGS`, the source insecure.
    fn rehearse(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
        command
            .args([
                "promote",
                "--manifest",
                "promoter-manifest.yaml",
                "--rehearse",
            ])
            .args(["--insecure-registry", &self.source.host()])
            .args(args)
            .current_dir(self.root())
            .env("NO_COLOR", "1")
            .env("DOCKER_CONFIG", self.root().join("no-docker-config"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("hoist runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Every image is in `local` under `<image>`, byte for byte, with its tags.
    async fn validate(&self, local: &RegistryServer) {
        for (name, image, tags) in &self.images {
            let digest: Digest = image.digest();
            validate_copy(
                &self.source.endpoint(),
                &format!("k8s-staging/{name}"),
                &local.endpoint(),
                name,
                digest,
            )
            .await
            .unwrap_or_else(|error| panic!("{name}@{digest} in {}: {error}", local.host()));
            for tag in tags {
                validate_tag(&local.endpoint(), name, tag, digest)
                    .await
                    .unwrap_or_else(|error| panic!("{name}:{tag}: {error}"));
            }
        }
    }
}

fn explain(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn images_land_byte_exact_in_the_registry_each_configmap_names() {
    let world = World::start().await;
    for (fixture_name, fixture_host, pulls_from) in [
        ("kind.yaml", "localhost:5001", None),
        ("ctlptl.yaml", "localhost:5005", None),
        ("ctlptl.json", "localhost:5005", None),
        (
            "k3d.yaml",
            "localhost:12345",
            Some("k3d-myregistry.localhost:5000"),
        ),
    ] {
        let local = registry();
        let config_map = pointed_at(fixture_name, fixture_host, &local.host());
        let file = write(world.root(), fixture_name, &config_map);
        let file = file.to_str().unwrap();

        // The dry run plans into the local registry and writes nothing.
        let dry = world.rehearse(&["--local-registry-hosting", file], None);
        assert_eq!(
            dry.status.code(),
            Some(0),
            "{fixture_name}: {}",
            explain(&dry)
        );
        let text = stdout(&dry);
        assert!(
            text.contains(&format!("{}: 3 to copy", local.host())),
            "{fixture_name}: {text}"
        );
        assert!(!text.contains("pkg.dev.invalid"), "{fixture_name}: {text}");
        assert!(
            local
                .access_log()
                .iter()
                .all(|entry| matches!(entry.method.as_str(), "GET" | "HEAD")),
            "{fixture_name}: a dry run writes nothing"
        );

        let confirmed = world.rehearse(&["--local-registry-hosting", file, "--confirm"], None);
        assert_eq!(
            confirmed.status.code(),
            Some(0),
            "{fixture_name}: {}",
            explain(&confirmed)
        );
        world.validate(&local).await;
        let text = stdout(&confirmed);
        let pull_host = pulls_from.map_or(local.host(), str::to_owned);
        assert!(
            text.contains(&format!("the cluster pulls them from {pull_host}")),
            "{fixture_name}: {text}"
        );
        assert!(
            text.contains(&format!("  {pull_host}/coredns:v1.11.1")),
            "{text}"
        );
        assert!(text.contains("plain HTTP on this machine"), "{text}");
        assert!(text.contains("help: https://"), "{fixture_name}: {text}");

        // A re-run has nothing to do.
        let again = world.rehearse(
            &[
                "--local-registry-hosting",
                file,
                "--confirm",
                "--output",
                "json",
            ],
            None,
        );
        assert_eq!(again.status.code(), Some(0), "{}", explain(&again));
        let report = json(&again);
        assert_eq!(report["steps"].as_array().unwrap().len(), 0, "{report:#}");
        assert_eq!(
            report["rehearsal"]["localRegistryHosting"]["host"],
            local.host()
        );
        let pulls = report["rehearsal"]["pulls"].as_array().unwrap();
        assert_eq!(pulls.len(), 4, "three tags and one digest: {pulls:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_configmap_can_come_on_stdin_and_bad_ones_are_refused() {
    let world = World::start().await;
    let local = registry();
    let config_map = pointed_at("kind.yaml", "localhost:5001", &local.host());
    let output = world.rehearse(
        &["--local-registry-hosting", "-", "--confirm"],
        Some(&config_map),
    );
    assert_eq!(output.status.code(), Some(0), "{}", explain(&output));
    world.validate(&local).await;

    // Only a newer version than hoist knows: refused, nothing read or written.
    let future = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: local-registry-hosting\n  namespace: kube-public\ndata:\n  localRegistryHosting.v2: |\n    host: 127.0.0.1:1\n";
    let output = world.rehearse(&["--local-registry-hosting", "-"], Some(future));
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("-:7:3: data: only localRegistryHosting.v2"),
        "{error}"
    );

    // A registry off this machine gets TLS: asking for plain HTTP to it is refused before any
    // request.
    let remote = "kind: ConfigMap\ndata:\n  localRegistryHosting.v1: |\n    host: registry.example.com:5000\n";
    let output = world.rehearse(
        &[
            "--local-registry-hosting",
            "-",
            "--insecure-registry",
            "registry.example.com:5000",
        ],
        Some(remote),
    );
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("plain HTTP only to a registry on this machine"),
        "{}",
        explain(&output)
    );

    // --rehearse does not mix with blob mirrors.
    let output = world.rehearse(&["--backends", "backends.yaml"], None);
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_configmap_file_kubectl_is_asked_and_its_absence_explained() {
    let world = World::start().await;
    let empty_path = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
    let output = command
        .args([
            "promote",
            "--manifest",
            "promoter-manifest.yaml",
            "--rehearse",
        ])
        .current_dir(world.root())
        .env("PATH", empty_path.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("--local-registry-hosting FILE"), "{error}");
    assert!(error.contains("kubectl"), "{error}");

    // A kubectl that prints the ConfigMap is used as is.
    let local = registry();
    let config_map = pointed_at("ctlptl.yaml", "localhost:5005", &local.host());
    write(world.root(), "kubectl-output.yaml", &config_map);
    let script = write(
        empty_path.path(),
        "kubectl",
        &format!(
            "#!/bin/sh\n[ \"$*\" = \"get configmap --namespace kube-public local-registry-hosting --output yaml --request-timeout 20s\" ] || exit 9\n/bin/cat {}\n",
            world.root().join("kubectl-output.yaml").display()
        ),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args([
            "promote",
            "--manifest",
            "promoter-manifest.yaml",
            "--rehearse",
            "--confirm",
        ])
        .args(["--insecure-registry", &world.source.host()])
        .current_dir(world.root())
        .env("PATH", empty_path.path())
        .env("DOCKER_CONFIG", world.root().join("no-docker-config"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", explain(&output));
    world.validate(&local).await;
    assert!(
        stdout(&output).contains("kubectl get configmap"),
        "{}",
        explain(&output)
    );
}
