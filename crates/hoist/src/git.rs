//! The little git that `check --base REV` needs, by running the `git` command: where the repository
//! is, which files a change touches, and the manifests as they were at REV.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// A git work tree.
#[derive(Debug)]
pub struct Repository {
    top: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run git {} (is git installed?)", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "git {} in {} failed: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl Repository {
    /// The repository holding `path` (a file or a directory).
    pub fn containing(path: &Path) -> anyhow::Result<Self> {
        let dir = if path.is_dir() {
            path
        } else {
            path.parent().unwrap_or(Path::new("."))
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let top = git(dir, &["rev-parse", "--show-toplevel"]).with_context(|| {
            format!(
                "--base needs {} to be inside a git repository",
                path.display()
            )
        })?;
        Ok(Self {
            top: PathBuf::from(top.trim()),
        })
    }

    /// The repository's top directory.
    pub fn top(&self) -> &Path {
        &self.top
    }

    /// Checks that `rev` names a commit.
    pub fn verify(&self, rev: &str) -> anyhow::Result<()> {
        git(
            &self.top,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ],
        )
        .with_context(|| {
            format!(
                "--base {rev}: not a commit of the repository at {}",
                self.top.display()
            )
        })?;
        Ok(())
    }

    /// `path` relative to the top, with '/' separators.
    pub fn relative(&self, path: &Path) -> anyhow::Result<String> {
        let absolute = path
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", path.display()))?;
        let top = self
            .top
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", self.top.display()))?;
        let relative = absolute
            .strip_prefix(&top)
            .with_context(|| format!("{} is not inside {}", path.display(), top.display()))?;
        Ok(relative.to_string_lossy().replace('\\', "/"))
    }

    /// Files changed since `rev` (committed, staged, unstaged and untracked), relative to the top.
    pub fn changed_files(&self, rev: &str) -> anyhow::Result<Vec<String>> {
        // NUL-separated: file names from a pull request may hold newlines or quotes.
        let mut files: Vec<String> = git(
            &self.top,
            &["diff", "--name-only", "-z", "--no-renames", rev, "--"],
        )?
        .split('\0')
        .chain(
            git(
                &self.top,
                &["ls-files", "-z", "--others", "--exclude-standard"],
            )?
            .split('\0'),
        )
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
        files.sort();
        files.dedup();
        Ok(files)
    }

    /// Which of `paths` (relative to the top) exist at `rev`.
    pub fn existing(&self, rev: &str, paths: &[String]) -> anyhow::Result<Vec<String>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![
            "--literal-pathspecs",
            "ls-tree",
            "-z",
            "--name-only",
            rev,
            "--",
        ];
        args.extend(paths.iter().map(String::as_str));
        Ok(git(&self.top, &args)?
            .split('\0')
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// For each of `paths` (files relative to the top, changed since `rev`), the line ranges of
    /// the file as it is now that differ from `rev` (inclusive, 1-based). A file new since `rev`
    /// is left out: all of it is new. Ranges of deleted lines are empty and left out.
    pub fn changed_lines(
        &self,
        rev: &str,
        paths: &[String],
    ) -> anyhow::Result<BTreeMap<String, Vec<(u32, u32)>>> {
        let mut changed: BTreeMap<String, Vec<(u32, u32)>> = BTreeMap::new();
        if paths.is_empty() {
            return Ok(changed);
        }
        let mut args = vec![
            "-c",
            "core.quotePath=false",
            "--literal-pathspecs",
            "diff",
            "-U0",
            "--no-color",
            "--no-renames",
            "--no-ext-diff",
            rev,
            "--",
        ];
        args.extend(paths.iter().map(String::as_str));
        let output = git(&self.top, &args)?;
        let mut current: Option<String> = None;
        for line in output.lines() {
            if let Some(name) = line.strip_prefix("+++ ") {
                // `+++ b/PATH`, or `/dev/null` for a deleted file. A name git had to quote is
                // left out: its file then counts as changed everywhere.
                current = name
                    .strip_prefix("b/")
                    .filter(|name| !name.starts_with('"'))
                    .map(str::to_owned);
            } else if line.starts_with("--- /dev/null") {
                current = None;
            } else if let Some(hunk) = line.strip_prefix("@@ ")
                && let Some(file) = &current
                && let Some(range) = hunk_range(hunk)
            {
                let ranges = changed.entry(file.clone()).or_default();
                if let Some(range) = range {
                    ranges.push(range);
                }
            }
        }
        Ok(changed)
    }

    /// Writes the trees of `paths` (relative to the top; each must exist at `rev`) at `rev`
    /// below `destination`.
    pub fn export_paths(
        &self,
        rev: &str,
        paths: &[String],
        destination: &Path,
    ) -> anyhow::Result<()> {
        let mut archive = Command::new("git")
            .arg("-C")
            .arg(&self.top)
            .args(["--literal-pathspecs", "archive", "--format=tar", rev, "--"])
            .args(paths)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .context("cannot run git archive")?;
        let stdout = archive.stdout.take().context("git archive has no stdout")?;
        let status = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(destination)
            .stdin(stdout)
            .status()
            .context("cannot run tar (is it installed?)")?;
        let archived = archive.wait().context("git archive did not finish")?;
        if !archived.success() || !status.success() {
            bail!(
                "cannot export {} path(s) at {rev} from {}",
                paths.len(),
                self.top.display()
            );
        }
        Ok(())
    }
}

/// The new-side range of a `-U0` hunk header (`-a,b +c,d @@ …`): `Some(None)` for a pure
/// deletion (no line of the new file), `None` when the header cannot be read.
fn hunk_range(hunk: &str) -> Option<Option<(u32, u32)>> {
    let new = hunk
        .split_whitespace()
        .find_map(|part| part.strip_prefix('+'))?;
    let (start, count) = match new.split_once(',') {
        Some((start, count)) => (start.parse::<u32>().ok()?, count.parse::<u32>().ok()?),
        None => (new.parse::<u32>().ok()?, 1),
    };
    Some((count > 0).then(|| (start, start + count - 1)))
}

#[cfg(test)]
mod tests {
    use super::hunk_range;

    #[test]
    fn hunk_headers() {
        assert_eq!(hunk_range("-3,0 +4,2 @@"), Some(Some((4, 5))));
        assert_eq!(hunk_range("-3 +3 @@ x"), Some(Some((3, 3))));
        assert_eq!(hunk_range("-3,2 +2,0 @@"), Some(None));
        assert_eq!(hunk_range("garbage"), None);
    }
}
