//! The catalogue file: a good one decodes; every mistake names file:line:column and key.

use std::path::PathBuf;

use hoist_object::{BackendUrl, Catalogue, ObjectErrorKind, Selector};

const GOOD: &str = "\
backends:
  - name: aws-us-east-2
    url: s3://prod-registry-k8s-io-us-east-2
    region: us-east-2
    endpoint: http://127.0.0.1:9000   # S3-compatible servers
    pathStyle: true
    labels: {cloud: aws, region: us-east-2}
  - name: aws-us-west-1
    url: s3://prod-registry-k8s-io-us-west-1/some/prefix/
    region: us-west-1
    labels: {cloud: aws, region: us-west-1}
  - name: gcs-us
    url: gs://k8s-artifacts-prod/prefix
    endpoint: http://127.0.0.1:4443
    labels: {cloud: gcp}
  - name: local
    url: file:target/hoist-demo/mirror
    labels:
      cloud: none
  - name: absolute
    url: file:///tmp/mirror
";

#[test]
fn a_good_catalogue_decodes() {
    let catalogue = Catalogue::from_str(GOOD, "backends.yaml").unwrap();
    let names: Vec<&str> = catalogue
        .backends
        .iter()
        .map(|backend| backend.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "aws-us-east-2",
            "aws-us-west-1",
            "gcs-us",
            "local",
            "absolute"
        ]
    );
    let east = &catalogue.backends[0];
    assert_eq!(
        east.url,
        BackendUrl::S3 {
            bucket: "prod-registry-k8s-io-us-east-2".into(),
            prefix: String::new()
        }
    );
    assert_eq!(east.options.region.as_deref(), Some("us-east-2"));
    assert_eq!(
        east.options.endpoint.as_deref(),
        Some("http://127.0.0.1:9000")
    );
    assert!(east.options.path_style);
    assert_eq!(east.labels["region"], "us-east-2");
    assert_eq!(
        catalogue.backends[1].url,
        BackendUrl::S3 {
            bucket: "prod-registry-k8s-io-us-west-1".into(),
            prefix: "some/prefix".into()
        }
    );
    assert!(!catalogue.backends[1].options.path_style);
    assert_eq!(
        catalogue.backends[2].url,
        BackendUrl::Gcs {
            bucket: "k8s-artifacts-prod".into(),
            prefix: "prefix".into()
        }
    );
    assert_eq!(
        catalogue.backends[2].url.to_string(),
        "gs://k8s-artifacts-prod/prefix"
    );
    assert_eq!(
        catalogue.backends[3].url,
        BackendUrl::File {
            path: PathBuf::from("target/hoist-demo/mirror")
        }
    );
    assert_eq!(
        catalogue.backends[4].url,
        BackendUrl::File {
            path: PathBuf::from("/tmp/mirror")
        }
    );
    assert!(catalogue.backends[4].labels.is_empty());
}

#[test]
fn selectors_pick_backends_by_label() {
    let catalogue = Catalogue::from_str(GOOD, "backends.yaml").unwrap();
    let names = |selector: &str| -> Vec<String> {
        catalogue
            .select(&Selector::parse(selector).unwrap())
            .iter()
            .map(|backend| backend.name.clone())
            .collect()
    };
    assert_eq!(names("cloud=aws"), ["aws-us-east-2", "aws-us-west-1"]);
    assert_eq!(names("cloud=aws,region!=us-west-1"), ["aws-us-east-2"]);
    assert_eq!(names("cloud!=aws"), ["gcs-us", "local", "absolute"]);
    assert_eq!(names("cloud==gcp"), ["gcs-us"]);
    assert_eq!(names("!cloud"), ["absolute"]);
    assert_eq!(names("").len(), 5);
    assert!(names("cloud=azure").is_empty());
}

/// Decodes `text` and returns the error message, which must start with the position.
fn error(text: &str) -> String {
    let error = Catalogue::from_str(text, "backends.yaml").unwrap_err();
    assert_eq!(error.kind(), ObjectErrorKind::Config);
    error.to_string()
}

#[test]
fn every_mistake_names_its_position_and_key() {
    let cases: &[(&str, &str)] = &[
        ("", "backends.yaml:1:1: backends: the file is empty"),
        ("backend: []\n", "backends.yaml:1:1: backend: unknown key"),
        (
            "backends: {}\n",
            "backends.yaml:1:11: backends: expected a list",
        ),
        (
            "backends:\n  - name: a\n",
            "backends.yaml:2:5: backends[0].url: missing required key",
        ),
        (
            "backends:\n  - name: a\n    url: ftp://x\n",
            "backends.yaml:3:10: backends[0].url: expected a URL starting with s3://, gs:// or file:",
        ),
        (
            "backends:\n  - name: a\n    url: s3://Bad_Bucket\n",
            "backends.yaml:3:10: backends[0].url: \"Bad_Bucket\" is not a bucket name",
        ),
        (
            "backends:\n  - name: a\n    url: s3://bucket//x\n",
            "backends.yaml:3:10: backends[0].url: the prefix",
        ),
        (
            "backends:\n  - name: a\n    url: s3://bucket\n    url: s3://other\n",
            "backends.yaml:4:5: backends[0].url: duplicate key, first at line 3",
        ),
        (
            "backends:\n  - name: a\n    url: s3://bucket\n    colour: red\n",
            "backends.yaml:4:5: backends[0].colour: unknown key; expected one of: name, url, region",
        ),
        (
            "backends:\n  - name: a\n    url: s3://bucket\n    pathStyle: \"yes\"\n",
            "backends.yaml:4:16: backends[0].pathStyle: expected true or false",
        ),
        (
            "backends:\n  - name: a\n    url: s3://bucket\n    region: [a]\n",
            "backends.yaml:4:13: backends[0].region: expected a region (a string), found a list",
        ),
        (
            "backends:\n  - name: a\n    url: s3://bucket\n    endpoint: 127.0.0.1:9000\n",
            "backends.yaml:4:15: backends[0].endpoint: expected an http:// or https:// URL",
        ),
        (
            "backends:\n  - name: a\n    url: gs://bucket\n    region: us\n",
            "backends.yaml:4:5: backends[0].region: region does not apply to gs://bucket",
        ),
        (
            "backends:\n  - name: a\n    url: file:x\n    endpoint: http://h\n",
            "backends.yaml:4:5: backends[0].endpoint: endpoint does not apply to file: URLs",
        ),
        (
            "backends:\n  - name: a\n    url: s3://bucket\n    labels: {cloud: [aws]}\n",
            "backends.yaml:4:21: backends[0].labels.cloud: expected a label value",
        ),
        (
            "backends:\n  - name: a\n    url: s3://bucket\n  - name: a\n    url: gs://bucket\n",
            "backends.yaml:4:5: backends[1].name: backend \"a\" is named twice, first at line 2",
        ),
        ("backends:\n  - name: [x\n", "backends.yaml:"),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(
            message.starts_with(expected),
            "for {text:?}:\n  got      {message}\n  expected {expected}"
        );
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let message = error("backends:\n  - name: a\n    url: nope\n  - url: s3://bucket\n");
    assert!(
        message.starts_with("backends.yaml:3:10: backends[0].url"),
        "{message}"
    );
    assert!(
        message.contains("\nbackends.yaml:4:5: backends[1].name: missing required key"),
        "{message}"
    );
}

#[test]
fn loading_a_missing_file_names_it() {
    let error = Catalogue::load(std::path::Path::new("no/such/backends.yaml")).unwrap_err();
    assert_eq!(error.kind(), ObjectErrorKind::NotFound);
    assert!(
        error.to_string().starts_with("no/such/backends.yaml: "),
        "{error}"
    );
}
