//! The two files a corpus is described by: the image list (`NAME DIGEST TAG...`, for the skopeo
//! side and the validator) and a plain hoist promoter manifest (for hoist).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use hoist_oci::Digest;

/// One promoted digest of one image, with its tags.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The image name under the repository prefixes (`app-07`).
    pub name: String,
    /// The manifest or index digest.
    pub digest: Digest,
    /// The tags it gets at every destination (at least one: skopeo copies to tags).
    pub tags: Vec<String>,
}

/// Reads an image list.
pub fn read(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(digest)) = (words.next(), words.next()) else {
            bail!(
                "{}:{}: expected NAME DIGEST TAG...",
                path.display(),
                number + 1
            );
        };
        let digest = Digest::parse(digest)
            .with_context(|| format!("{}:{}: bad digest", path.display(), number + 1))?;
        entries.push(Entry {
            name: name.to_owned(),
            digest,
            tags: words.map(str::to_owned).collect(),
        });
    }
    Ok(entries)
}

/// Writes an image list, one entry a line.
pub fn write(path: &Path, entries: &[Entry]) -> anyhow::Result<()> {
    let mut text = String::new();
    for entry in entries {
        let _ = writeln!(
            text,
            "{} {} {}",
            entry.name,
            entry.digest,
            entry.tags.join(" ")
        );
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Writes a plain promoter manifest: `source` (`HOST/PREFIX`) as the `src: true` registry, the
/// `destinations` after it, and one `images:` entry per name with all its digests in `dmap`.
pub fn write_manifest(
    path: &Path,
    source: &str,
    destinations: &[String],
    entries: &[Entry],
) -> anyhow::Result<()> {
    let mut text = String::from(
        "# Written by the bench-corpus example of hoist-testkit (ci/bench-promote.sh).\nregistries:\n",
    );
    let _ = writeln!(text, "- name: {source}\n  src: true");
    for destination in destinations {
        let _ = writeln!(text, "- name: {destination}");
    }
    text.push_str("images:\n");
    let mut names: Vec<&str> = Vec::new();
    for entry in entries {
        if !names.contains(&entry.name.as_str()) {
            names.push(&entry.name);
        }
    }
    for name in names {
        let _ = writeln!(text, "- name: {name}\n  dmap:");
        for entry in entries.iter().filter(|entry| entry.name == name) {
            let tags: Vec<String> = entry.tags.iter().map(|tag| format!("\"{tag}\"")).collect();
            let _ = writeln!(text, "    \"{}\": [{}]", entry.digest, tags.join(", "));
        }
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Entry> {
        let digest = |byte: u8| Digest::from_sha256([byte; 32]);
        vec![
            Entry {
                name: "app-00".to_owned(),
                digest: digest(1),
                tags: vec!["v1.0.0".to_owned(), "v1.0".to_owned()],
            },
            Entry {
                name: "tools/tool-06".to_owned(),
                digest: digest(2),
                tags: vec!["v1.6.0".to_owned()],
            },
            Entry {
                name: "app-00".to_owned(),
                digest: digest(3),
                tags: vec![format!("{}.sig", digest(1).tag_prefix())],
            },
        ]
    }

    #[test]
    fn image_lists_round_trip() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("images.txt");
        write(&path, &entries()).unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.len(), 3);
        for (written, read) in entries().iter().zip(&read_back) {
            assert_eq!(
                (&written.name, written.digest, &written.tags),
                (&read.name, read.digest, &read.tags)
            );
        }
    }

    #[test]
    fn manifests_group_digests_by_image() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("promoter-manifest.yaml");
        let destinations = ["127.0.0.1:2/prod".to_owned(), "127.0.0.1:3/prod".to_owned()];
        write_manifest(&path, "127.0.0.1:1/staging", &destinations, &entries()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let one = "01".repeat(32);
        let expected = format!(
            "registries:\n- name: 127.0.0.1:1/staging\n  src: true\n- name: 127.0.0.1:2/prod\n\
             - name: 127.0.0.1:3/prod\nimages:\n- name: app-00\n  dmap:\n    \
             \"sha256:{one}\": [\"v1.0.0\", \"v1.0\"]\n    \"sha256:{three}\": [\"sha256-{one}.sig\"]\n\
             - name: tools/tool-06\n  dmap:\n    \"sha256:{two}\": [\"v1.6.0\"]\n",
            two = "02".repeat(32),
            three = "03".repeat(32),
        );
        assert!(text.ends_with(&expected), "{text}");
    }
}
