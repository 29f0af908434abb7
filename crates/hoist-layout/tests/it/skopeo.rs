//! skopeo, an independent implementation, reads the layouts hoist writes.

use std::path::Path;
use std::process::Command;

use hoist_testkit::ImageBuilder;

use crate::{push_image, temp_store};

/// Runs skopeo, or `None` when it is not installed (the test then says it skips).
fn skopeo(arguments: &[&str]) -> Option<std::process::Output> {
    match Command::new("skopeo").args(arguments).output() {
        Ok(output) => Some(output),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            println!("skipping: skopeo is not installed");
            None
        }
        Err(error) => panic!("running skopeo: {error}"),
    }
}

fn layout(root: &Path, repository: &str, tag: &str) -> String {
    format!("oci:{}:{tag}", root.join(repository).display())
}

#[tokio::test]
async fn skopeo_inspects_and_copies_what_we_wrote() {
    let (directory, store) = temp_store();
    let single = ImageBuilder::new(21).layers(&[3000, 70_000]).build();
    let multi = ImageBuilder::new(22).layer(2000).build_multi_arch();
    push_image(&store, "prod/app", &single, "v1").await;
    push_image(&store, "prod/app", &multi, "v2").await;

    for (tag, image) in [("v1", &single), ("v2", &multi)] {
        let Some(output) = skopeo(&[
            "inspect",
            "--raw",
            &layout(directory.path(), "prod/app", tag),
        ]) else {
            return;
        };
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            output.stdout, image.raw_manifest,
            "skopeo inspect --raw {tag}"
        );
    }

    let out = tempfile::tempdir().unwrap();
    let target = format!("dir:{}", out.path().join("v1").display());
    let Some(output) = skopeo(&["copy", &layout(directory.path(), "prod/app", "v1"), &target])
    else {
        return;
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let copied = std::fs::read(out.path().join("v1/manifest.json")).unwrap();
    assert_eq!(copied, single.raw_manifest);
    for blob in single.blobs() {
        let path = out.path().join("v1").join(blob.digest().hex());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            blob.to_bytes(),
            "{}",
            path.display()
        );
    }

    // The whole index, children included.
    let target = format!("dir:{}", out.path().join("v2").display());
    let arguments = [
        "copy",
        "--all",
        &layout(directory.path(), "prod/app", "v2"),
        &target,
    ];
    let output = skopeo(&arguments).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read(out.path().join("v2/manifest.json")).unwrap(),
        multi.raw_manifest
    );
}
