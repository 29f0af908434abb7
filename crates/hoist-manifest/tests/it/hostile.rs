//! Manifests from a hostile pull request: nothing outside the tree is read or echoed, nothing
//! echoed is long, nothing nested or large exhausts the process, and no input makes `load` panic.

use std::path::Path;
use std::time::{Duration, Instant};

use hoist_manifest::{Input, Loaded, Severity, load};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::support::{digest, fixtures};

const SECRET: &str = "hoist-test-secret-4f1c";

fn write(dir: &Path, relative: &str, text: &str) {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn manifest(source: &str) -> String {
    format!("registries:\n- name: {source}\n  src: true\n- name: r.example/prod\n")
}

fn images(name: &str) -> String {
    format!(
        "- name: {name}\n  dmap:\n    \"{}\": [\"v1\"]\n",
        digest('a')
    )
}

/// Everything a load printed, as one text.
fn everything(loaded: &Loaded) -> String {
    loaded
        .diagnostics
        .iter()
        .map(|diagnostic| format!("{diagnostic} {:?}\n", diagnostic.value))
        .collect()
}

/// A directory outside the tree holding a secret, and a tree beside it.
fn secret_and_tree() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let outside = scratch.path().join("outside");
    write(&outside, "secret.yaml", &format!("- name: {SECRET}\n"));
    write(&outside, "p/images.yaml", &images(SECRET));
    let tree = scratch.path().join("tree");
    write(
        &tree,
        "manifests/good/promoter-manifest.yaml",
        &manifest("gcr.io/good"),
    );
    write(&tree, "images/good/images.yaml", &images("good"));
    (scratch, outside, tree)
}

#[test]
fn a_link_leaving_the_tree_is_an_error_naming_the_link_and_never_its_target() {
    let (_scratch, outside, tree) = secret_and_tree();
    write(
        &tree,
        "manifests/evil/promoter-manifest.yaml",
        &manifest("gcr.io/evil"),
    );
    std::fs::create_dir_all(tree.join("images/evil")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("secret.yaml"),
        tree.join("images/evil/images.yaml"),
    )
    .unwrap();
    // A whole project directory linked out of the tree.
    write(
        &tree,
        "manifests/away/promoter-manifest.yaml",
        &manifest("gcr.io/away"),
    );
    std::os::unix::fs::symlink(outside.join("p"), tree.join("images/away")).unwrap();
    // A link inside the tree is followed, as the promoter does.
    write(
        &tree,
        "manifests/twin/promoter-manifest.yaml",
        &manifest("gcr.io/twin"),
    );
    std::os::unix::fs::symlink(tree.join("images/good"), tree.join("images/twin")).unwrap();

    let loaded = load(&[Input::Thin(tree.clone())]);
    let text = everything(&loaded);
    assert!(!text.contains(SECRET), "{text}");
    let target = outside.display().to_string();
    assert!(
        !text.contains(&target),
        "the target is never echoed: {text}"
    );
    let links: Vec<&hoist_manifest::Diagnostic> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.message.contains("symbolic link"))
        .collect();
    assert_eq!(links.len(), 2, "{text}");
    assert!(links.iter().all(|d| d.severity == Severity::Error));
    assert_eq!(links[0].file.as_ref(), tree.join("images/away"));
    assert_eq!(links[1].file.as_ref(), tree.join("images/evil/images.yaml"));
    assert!(
        links[0].message.contains("outside the manifest tree"),
        "{text}"
    );
    // Each finding belongs to its project.
    assert_eq!(
        links[1].manifest.as_deref(),
        Some(tree.join("manifests/evil/promoter-manifest.yaml").as_path())
    );
    let loaded_projects: Vec<&str> = loaded
        .manifests
        .iter()
        .filter(|m| !m.images.is_empty())
        .filter_map(|m| m.project.as_deref())
        .collect();
    assert_eq!(loaded_projects, ["good", "twin"]);
    let twin = loaded.projects.iter().find(|p| p.name == "twin").unwrap();
    assert!(twin.linked);
    assert_eq!(loaded.projects.len(), 4);

    // A plain manifest that is a link out of its directory is not read either.
    let plain = tree.join("plain.yaml");
    std::os::unix::fs::symlink(outside.join("secret.yaml"), &plain).unwrap();
    let loaded = load(&[Input::Plain(plain.clone())]);
    let text = everything(&loaded);
    assert!(!text.contains(SECRET) && !text.contains(&target), "{text}");
    assert_eq!(loaded.diagnostics.len(), 1, "{text}");
    assert_eq!(loaded.diagnostics[0].file.as_ref(), plain);
}

#[test]
fn echoed_values_are_short_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("{SECRET}{}", "x".repeat(100_000));
    // YAML keys are at most 1024 characters long.
    let key = format!("{SECRET}{}", "k".repeat(1_000));
    let text = format!(
        "{}images:\n- name: \"{long}\"\n  dmap: {{}}\n- name: ok\n  dmap:\n    \"{key}\": []\n    \"{}\": [\"\\e[2J{long}\"]\n  {key}: 1\n",
        manifest("gcr.io/s"),
        digest('b'),
    );
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, text).unwrap();
    let loaded = load(&[Input::Plain(file)]);
    assert!(loaded.diagnostics.len() >= 3, "{:#?}", loaded.diagnostics);
    for diagnostic in &loaded.diagnostics {
        let shown = format!("{diagnostic}");
        assert!(shown.len() < 1_000, "{} bytes: {shown:.300}", shown.len());
        assert!(!shown.contains('\u{1b}'), "{shown:.300}");
        if let Some(value) = &diagnostic.value {
            assert!(value.chars().count() < 140, "{value:.300}");
        }
    }
}

#[test]
fn deep_nesting_and_huge_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep.yaml");
    std::fs::write(
        &deep,
        format!("{}1{}", "[".repeat(50_000), "]".repeat(50_000)),
    )
    .unwrap();
    let huge = dir.path().join("huge.yaml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(hoist_yaml::MAX_FILE_BYTES + 1)
        .unwrap();
    let loaded = load(&[Input::Plain(deep), Input::Plain(huge)]);
    let messages: Vec<&str> = loaded
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains("nested deeper than 64") || messages[0].contains("syntax"),
        "{messages:?}"
    );
    assert_eq!(messages[1], "cannot read this file: larger than 16 MiB");
}

#[test]
fn a_registry_twice_with_different_fields_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    std::fs::write(
        &file,
        format!(
            "{}- name: r.example/prod\n  service-account: a@b.example\nimages: []\n",
            manifest("gcr.io/s")
        ),
    )
    .unwrap();
    let loaded = load(&[Input::Plain(file)]);
    assert_eq!(loaded.diagnostics.len(), 1, "{:#?}", loaded.diagnostics);
    let diagnostic = &loaded.diagnostics[0];
    assert_eq!(diagnostic.severity, Severity::Error);
    assert!(
        diagnostic.message.contains("with different fields"),
        "{diagnostic}"
    );
}

/// Characters that mean something to YAML, to mutate with.
const YAML_BYTES: &[u8] = b"[]{}:-,'\"&*!|>#%@?\n\t \\~0123456789abcdef";

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..rng.random_range(1..8) {
        let position = rng.random_range(0..=bytes.len());
        match rng.random_range(0..7) {
            0 if !bytes.is_empty() => {
                let at = position.min(bytes.len() - 1);
                bytes[at] = YAML_BYTES[rng.random_range(0..YAML_BYTES.len())];
            }
            1 => bytes.insert(position, YAML_BYTES[rng.random_range(0..YAML_BYTES.len())]),
            2 => {
                let end = (position + rng.random_range(0..64)).min(bytes.len());
                bytes.drain(position..end);
            }
            3 => {
                let end = (position + rng.random_range(0..256)).min(bytes.len());
                let copy = bytes[position..end].to_vec();
                bytes.splice(position..position, copy);
            }
            4 => bytes.truncate(position),
            5 => {
                let opener = if rng.random_bool(0.5) { "[" } else { "{a: " };
                let depth = rng.random_range(1..200);
                bytes.splice(position..position, opener.repeat(depth).into_bytes());
            }
            _ => bytes.insert(position, rng.random()),
        }
    }
    bytes
}

/// Random mutations of real-looking manifests through both loaders: every input loads (with
/// diagnostics) in bounded time, and nothing panics.
#[test]
fn mutated_manifests_never_crash_the_loader() {
    let seeds: Vec<Vec<u8>> = [
        "plain/valid.yaml",
        "plain/repeated-images.yaml",
        "plain/bad-values.yaml",
        "thin/good/images/alpha/images.yaml",
        "thin/good/manifests/alpha/promoter-manifest.yaml",
    ]
    .iter()
    .map(|name| std::fs::read(fixtures().join(name)).unwrap())
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.yaml");
    let tree = dir.path().join("tree");
    write(
        &tree,
        "manifests/p/promoter-manifest.yaml",
        &manifest("gcr.io/p"),
    );
    let mut rng = StdRng::seed_from_u64(0x5eed_0008);
    let mut slowest = Duration::ZERO;
    for round in 0..1_500 {
        let seed = &seeds[round % seeds.len()];
        let mutated = mutate(&mut rng, seed);
        std::fs::write(&plain, &mutated).unwrap();
        std::fs::write(tree.join("images/p/images.yaml").as_path(), &mutated)
            .or_else(|_| {
                std::fs::create_dir_all(tree.join("images/p"))?;
                std::fs::write(tree.join("images/p/images.yaml"), &mutated)
            })
            .unwrap();
        let started = Instant::now();
        let loaded = std::panic::catch_unwind(|| {
            load(&[Input::Plain(plain.clone()), Input::Thin(tree.clone())])
        })
        .unwrap_or_else(|_| {
            panic!(
                "load panicked on round {round}: {:?}",
                String::from_utf8_lossy(&mutated)
            )
        });
        slowest = slowest.max(started.elapsed());
        for diagnostic in &loaded.diagnostics {
            assert!(format!("{diagnostic}").len() < 2_000);
        }
    }
    // Generous for a loaded debug build: each input is a few hundred bytes.
    assert!(slowest < Duration::from_secs(5), "slowest load {slowest:?}");
}
