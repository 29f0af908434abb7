//! `hoist snapshot` against a real registry:2 and OCI layouts: what a repository holds, and a clear
//! error (never an empty listing) for a repository that does not exist.

use hoist_testkit::{ImageBuilder, RegistryOptions, RegistryServer, push, signature_for};

use crate::support::{hoist, stdout};

#[tokio::test(flavor = "multi_thread")]
async fn lists_a_registry_repository_and_refuses_a_missing_one() {
    let registry = RegistryServer::start(RegistryOptions::plain()).expect("docker-registry starts");
    let endpoint = registry.endpoint();
    let client = endpoint.client().unwrap();
    let image = ImageBuilder::new(7).layer(10_000).build();
    let signature = signature_for(&image, 8);
    push(&client, &endpoint, "staging/app", &image, &["v1", "latest"])
        .await
        .unwrap();
    push(
        &client,
        &endpoint,
        "staging/app",
        &signature,
        &[&image.signature_tag()],
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = registry.host();
    let snapshot = |repository: &str, extra: &[&str]| {
        let mut args = vec!["snapshot", repository, "--insecure-registry", host.as_str()];
        args.extend_from_slice(extra);
        hoist(dir.path(), &args)
    };

    let output = snapshot(&format!("{host}/staging/app"), &[]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("- name: app"), "{text}");
    assert!(text.contains(&image.digest().to_string()), "{text}");
    assert!(text.contains("latest") && text.contains("v1"), "{text}");
    assert!(
        !text.contains(".sig"),
        "cosign tags are left out by default: {text}"
    );
    let all = stdout(&snapshot(&format!("{host}/staging/app"), &["--all-tags"]));
    assert!(all.contains(&image.signature_tag()), "{all}");

    let missing = snapshot(&format!("{host}/staging/ap"), &[]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(
        missing.stdout.is_empty(),
        "no listing on stdout: {missing:?}"
    );
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("staging/ap") && stderr.contains("no such repository"),
        "{stderr}"
    );
}

#[test]
fn a_layout_that_does_not_exist_is_an_error_not_an_empty_repository() {
    let dir = tempfile::tempdir().unwrap();
    let output = hoist(dir.path(), &["snapshot", "oci:/nonexistent/x"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no such repository"),
        "{output:?}"
    );
}
