//! Reading the `local-registry-hosting` ConfigMap.

use hoist_rehearsal::{LocalRegistryHosting, RehearsalError};

use crate::fixture;

fn parse(text: &str) -> Result<LocalRegistryHosting, RehearsalError> {
    LocalRegistryHosting::parse(text, "cm.yaml")
}

fn error_text(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn kinds_documented_script() {
    let (text, file) = fixture("kind.yaml");
    let hosting = LocalRegistryHosting::parse(&text, &file).unwrap();
    assert_eq!(hosting.version, 1);
    assert_eq!(hosting.host, "localhost:5001");
    assert_eq!(hosting.host_from_container_runtime, None);
    assert_eq!(hosting.host_from_cluster_network, None);
    assert_eq!(
        hosting.help.as_deref(),
        Some("https://kind.sigs.k8s.io/docs/user/local-registry/")
    );
    // Without hostFromContainerRuntime the cluster pulls from host (KEP-1755).
    assert_eq!(hosting.pull_host(), "localhost:5001");
    assert_eq!(hosting.registry().as_str(), "localhost:5001");
    assert!(hosting.notes.is_empty(), "{:?}", hosting.notes);
}

#[test]
fn ctlptl_in_yaml_and_json() {
    for name in ["ctlptl.yaml", "ctlptl.json"] {
        let (text, file) = fixture(name);
        let hosting = LocalRegistryHosting::parse(&text, &file).unwrap();
        assert_eq!(hosting.host, "localhost:5005", "{name}");
        assert_eq!(
            hosting.host_from_cluster_network.as_deref(),
            Some("ctlptl-registry:5000")
        );
        assert_eq!(
            hosting.help.as_deref(),
            Some("https://github.com/tilt-dev/ctlptl")
        );
        assert_eq!(hosting.pull_host(), "localhost:5005");
    }
}

#[test]
fn k3d_pulls_from_the_container_runtime_host() {
    let (text, file) = fixture("k3d.yaml");
    let hosting = LocalRegistryHosting::parse(&text, &file).unwrap();
    assert_eq!(hosting.host, "localhost:12345");
    assert_eq!(
        hosting.host_from_container_runtime.as_deref(),
        Some("k3d-myregistry.localhost:5000")
    );
    assert_eq!(hosting.pull_host(), "k3d-myregistry.localhost:5000");
}

const V1: &str = "host: localhost:5001\nhelp: https://example.com/v1\n";

fn config_map(data: &[(&str, &str)]) -> String {
    let mut text = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: local-registry-hosting\n  namespace: kube-public\ndata:\n",
    );
    for (key, value) in data {
        text.push_str(&format!("  {key}: {}\n", serde_json_string(value)));
    }
    text
}

/// A double-quoted YAML (and JSON) string.
fn serde_json_string(value: &str) -> String {
    let mut quoted = String::from('"');
    for character in value.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

#[test]
fn the_newest_known_version_is_read_and_unknown_ones_are_noted() {
    let hosting = parse(&config_map(&[
        ("localRegistryHosting.v2", "endpoint: whatever\n"),
        ("localRegistryHosting.v1", V1),
        ("unrelated", "x"),
    ]))
    .unwrap();
    assert_eq!(hosting.version, 1);
    assert_eq!(hosting.host, "localhost:5001");
    assert_eq!(hosting.notes.len(), 1, "{:?}", hosting.notes);
    assert!(hosting.notes[0].contains("localRegistryHosting.v2"));
}

#[test]
fn unknown_versions_alone_are_refused() {
    let message = error_text(&config_map(&[("localRegistryHosting.v2", "host: x:1\n")]));
    assert!(
        message.contains("only localRegistryHosting.v2")
            && message.contains("reads localRegistryHosting.v1"),
        "{message}"
    );
    let message = error_text(&config_map(&[("other", "x")]));
    assert!(
        message.contains("no localRegistryHosting.vN key"),
        "{message}"
    );
    assert!(message.starts_with("cm.yaml:"), "{message}");
}

#[test]
fn v1_keys_it_does_not_define_are_noted_not_fatal() {
    // Seen in the wild: kind/apiVersion inside the v1 document.
    let hosting = parse(&config_map(&[(
        "localRegistryHosting.v1",
        "kind: LocalRegistryHosting\napiVersion: v1\nhost: localhost:5001\n",
    )]))
    .unwrap();
    assert_eq!(hosting.host, "localhost:5001");
    assert_eq!(hosting.notes.len(), 2, "{:?}", hosting.notes);
}

#[test]
fn bad_configmaps_are_errors_with_positions() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("- a\n", "expected the ConfigMap"),
        ("kind: Secret\n", "expected a ConfigMap, found a Secret"),
        (
            "kind: ConfigMap\nmetadata:\n  name: other\n",
            "this is the ConfigMap \"other\"",
        ),
        (
            "kind: ConfigMap\nmetadata:\n  name: local-registry-hosting\n  namespace: default\n",
            "KEP-1755 puts it in \"kube-public\"",
        ),
        ("kind: ConfigMap\n", "has no data"),
        ("kind: ConfigMap\ndata: [a]\n", "expected a map of strings"),
        (
            "kind: ConfigMap\ndata:\n  localRegistryHosting.v1:\n    host: x\n",
            "expected a string holding a YAML document",
        ),
        (
            "kind: ConfigMap\ndata:\n  localRegistryHosting.v1: \"help: x\"\n",
            "no host",
        ),
        (
            "kind: ConfigMap\ndata:\n  localRegistryHosting.v1: \"host: http://localhost:5000\"\n",
            "not HOST[:PORT]",
        ),
        (
            "kind: ConfigMap\ndata:\n  localRegistryHosting.v1: \"host: [a]\"\n",
            "expected a string",
        ),
        (
            "kind: ConfigMap\ndata:\n  localRegistryHosting.v1: \"- a\"\n",
            "expected a map",
        ),
        ("kind: ConfigMap\ndata: {a: [\n", "YAML syntax error"),
    ];
    for (text, expected) in cases {
        let message = error_text(text);
        assert!(message.contains(expected), "{text:?}: {message}");
    }
    // Errors inside the document point at its key and say where inside it.
    let error =
        parse("kind: ConfigMap\ndata:\n  localRegistryHosting.v1: \"help: x\\nhost: a/b\"\n")
            .unwrap_err();
    let RehearsalError::Invalid {
        line, key, message, ..
    } = &error;
    assert_eq!(*line, 3, "{error}");
    assert_eq!(key, "data.localRegistryHosting.v1: host", "{error}");
    assert!(message.contains("line 2 of the value"), "{error}");
}

#[test]
fn a_list_of_configmaps_is_searched() {
    let text = format!(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: other, namespace: kube-public}}\n  data: {{a: b}}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: local-registry-hosting, namespace: kube-public}}\n  data:\n    localRegistryHosting.v1: {}\n",
        serde_json_string(V1)
    );
    assert_eq!(parse(&text).unwrap().host, "localhost:5001");
    let message = error_text("kind: List\nitems: []\n");
    assert!(
        message.contains("no ConfigMap kube-public/local-registry-hosting"),
        "{message}"
    );
}
