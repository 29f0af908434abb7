//! hoist-files: loading and validation of file manifests (both layouts), and promotions and
//! audits against real stores on 127.0.0.1: a directory, s3s-fs and fake-gcs-server.

mod loading;
mod promotion;

use std::path::{Path, PathBuf};

/// Writes `text` to `dir/relative` (creating directories) and returns the path.
pub fn write(dir: &Path, relative: &str, text: &str) -> PathBuf {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// 64 lowercase hex digits: the sha256 of `content`.
pub fn sha256_hex(content: &[u8]) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(content))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
