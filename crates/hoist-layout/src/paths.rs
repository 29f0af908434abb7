//! Where a layout lives: one canonical directory however it is spelled, the repository names that
//! would land inside another repository's layout, and the `index.json` locks shared by every
//! store of a process.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Names a layout keeps for itself in a repository directory. A repository path component
/// with one of these names would put that repository inside its parent's layout (`foo/blobs`
/// would write `foo/blobs/index.json` among `foo`'s blobs; `foo/index.json` would be a directory
/// where `foo`'s index must be a file).
pub(crate) const RESERVED: [&str; 3] = ["blobs", "index.json", "oci-layout"];

/// The reserved name among `repository`'s components, if any.
pub(crate) fn reserved_component(repository: &str) -> Option<&'static str> {
    repository
        .split('/')
        .find_map(|component| RESERVED.iter().copied().find(|name| *name == component))
}

/// `path` made absolute, with symbolic links resolved as far as the path exists and `.` and `..`
/// resolved in the part that does not exist yet. `out/prod`, `./out/prod`, `out/../out/prod/`
/// and a symbolic link to it all give the same directory. Falls back to the path as given when
/// the working directory cannot be read.
pub fn canonical_directory(path: &Path) -> PathBuf {
    let Ok(absolute) = std::path::absolute(path) else {
        return path.to_path_buf();
    };
    // Component by component, as the kernel walks a path: an existing prefix is resolved by the
    // file system (links included), so a `..` after a link leaves the link's target; past the
    // first missing component nothing can be a link, and the rest is resolved by its names.
    let mut canonical = PathBuf::new();
    let mut exists = true;
    for component in absolute.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => canonical.push(component.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                canonical.pop();
                // Back in a directory that exists: what follows may be a link again.
                exists = true;
            }
            Component::Normal(name) => {
                canonical.push(name);
                if exists {
                    match std::fs::canonicalize(&canonical) {
                        Ok(resolved) => canonical = resolved,
                        Err(_) => exists = false,
                    }
                }
            }
        }
    }
    canonical
}

type IndexLock = tokio::sync::Mutex<()>;

/// The lock of the `index.json` in `directory` (a canonical repository directory), shared by
/// every store of this process, so that two stores opened on two spellings of one layout still
/// serialise their index updates. Locks nobody holds are dropped.
pub(crate) fn index_lock(directory: &Path) -> Arc<IndexLock> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Weak<IndexLock>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(lock) = locks.get(directory).and_then(Weak::upgrade) {
        return lock;
    }
    locks.retain(|_, lock| lock.strong_count() > 0);
    let lock = Arc::new(IndexLock::new(()));
    locks.insert(directory.to_path_buf(), Arc::downgrade(&lock));
    lock
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_directory_agree() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path();
        std::fs::create_dir_all(base.join("out")).unwrap();
        let expected = canonical_directory(&base.join("out/prod"));
        for spelling in [
            base.join("out/./prod"),
            base.join("out/prod/"),
            base.join("out/../out/prod"),
            base.join("out/new/../prod"),
            base.join("./out/prod"),
        ] {
            assert_eq!(canonical_directory(&spelling), expected, "{spelling:?}");
        }
        std::os::unix::fs::symlink(base.join("out"), base.join("link")).unwrap();
        assert_eq!(canonical_directory(&base.join("link/prod")), expected);
        assert!(expected.is_absolute());
    }

    #[test]
    fn reserved_names_are_found_in_any_component() {
        assert_eq!(reserved_component("foo/blobs"), Some("blobs"));
        assert_eq!(reserved_component("foo/index.json/bar"), Some("index.json"));
        assert_eq!(reserved_component("oci-layout"), Some("oci-layout"));
        assert_eq!(reserved_component("foo/blobs-cache"), None);
        assert_eq!(reserved_component("foo/bar"), None);
    }

    #[test]
    fn index_locks_are_shared_per_directory() {
        let a = index_lock(Path::new("/x/a"));
        let again = index_lock(Path::new("/x/a"));
        let b = index_lock(Path::new("/x/b"));
        assert!(Arc::ptr_eq(&a, &again));
        assert!(!Arc::ptr_eq(&a, &b));
    }
}
