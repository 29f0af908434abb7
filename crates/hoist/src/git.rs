//! The little git that `check --base REV` needs, by running the `git` command: where the repository
//! is, which files a change touches, and the manifests as they were at REV.

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
        let mut files: Vec<String> = git(
            &self.top,
            &["diff", "--name-only", "--no-renames", rev, "--"],
        )?
        .lines()
        .chain(git(&self.top, &["ls-files", "--others", "--exclude-standard"])?.lines())
        .map(str::to_owned)
        .collect();
        files.sort();
        files.dedup();
        Ok(files)
    }

    /// Writes the tree of `relative` (a file or directory) at `rev` below `destination`. Returns
    /// false when `relative` did not exist at `rev`.
    pub fn export(&self, rev: &str, relative: &str, destination: &Path) -> anyhow::Result<bool> {
        let object = if relative.is_empty() {
            format!("{rev}^{{tree}}")
        } else {
            format!("{rev}:{relative}")
        };
        if git(&self.top, &["cat-file", "-e", &object]).is_err() {
            return Ok(false);
        }
        let mut archive = Command::new("git")
            .arg("-C")
            .arg(&self.top)
            .args(["archive", "--format=tar", rev, "--"])
            .arg(if relative.is_empty() { "." } else { relative })
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
                "cannot export {relative} at {rev} from {}",
                self.top.display()
            );
        }
        Ok(true)
    }
}
