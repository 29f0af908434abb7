//! Helpers: run the binary, write manifests, make git repositories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `hoist ARGS` in `dir`.
pub fn hoist(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(args)
        .current_dir(dir)
        .env_remove("REPO_OWNER")
        .env_remove("REPO_NAME")
        .env_remove("PULL_BASE_REF")
        .env("NO_COLOR", "1")
        .output()
        .expect("hoist runs")
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stdout parsed as JSON.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(output)))
}

/// A 64-hex digest made of one repeated hex digit.
pub fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// Writes `text` to `dir/relative`, creating parents.
pub fn write(dir: &Path, relative: &str, text: &str) -> PathBuf {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// A thin promoter-manifest.yaml promoting from `source` to `destinations`.
pub fn promoter_manifest(source: &str, destinations: &[&str]) -> String {
    let mut text = format!("registries:\n- name: {source}\n  src: true\n");
    for destination in destinations {
        text.push_str(&format!("- name: {destination}\n"));
    }
    text
}

/// An images.yaml with one image and `(digest char, tags)` lines.
pub fn images(name: &str, dmap: &[(char, &[&str])]) -> String {
    let mut text = format!("- name: {name}\n  dmap:\n");
    for (c, tags) in dmap {
        let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
        text.push_str(&format!("    \"{}\": [{}]\n", digest(*c), tags.join(", ")));
    }
    text
}

/// Runs git in `dir`, panicking on failure.
pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=hoist test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

/// A new git repository in a temporary directory, with one commit of what `fill` writes.
pub fn repository(fill: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    fill(dir.path());
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "base"]);
    dir
}

/// The shared corpus of real Kubernetes manifests, when it is present beside the repository.
pub fn corpus() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/k8s.io");
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!(
            "SKIP: the shared corpus is not at {}; skipping the real-data test",
            path.display()
        );
        None
    }
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
