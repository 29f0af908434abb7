//! Integration tests of hoist-layout: layouts built through the `Sink` API, read back through the
//! `Source` API, and cross-checked with skopeo.

mod blobs;
mod manifests;
mod skopeo;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use hoist_layout::LayoutStore;
use hoist_oci::{Reference, Tag};
use hoist_store::{ByteStream, RawManifest, Sink, StoreError};
use hoist_testkit::{BlobContent, Image};

/// A store in a fresh temporary directory (kept alive by the returned guard).
fn temp_store() -> (tempfile::TempDir, LayoutStore) {
    let directory = tempfile::tempdir().unwrap();
    let store = LayoutStore::open(directory.path());
    (directory, store)
}

fn stream_of(chunks: Vec<Result<Bytes, StoreError>>) -> ByteStream {
    Box::pin(futures::stream::iter(chunks))
}

async fn collect(mut stream: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// Pushes `image` like the copier does: blobs (generated layers streamed), children by digest,
/// then the top manifest under `tag`.
async fn push_image(store: &LayoutStore, repository: &str, image: &Image, tag: &str) {
    for blob in image.blobs() {
        let stream: ByteStream = match &blob.content {
            BlobContent::Inline(bytes) => stream_of(vec![Ok(bytes.clone())]),
            BlobContent::Generated(layer) => Box::pin(
                layer
                    .stream()
                    .map(|chunk| chunk.map_err(|error| StoreError::io("layer", error))),
            ),
        };
        store
            .push_blob(repository, &blob.digest(), blob.descriptor.size, stream)
            .await
            .unwrap();
    }
    for manifest in image.manifests() {
        let raw = raw(manifest);
        let reference = if std::ptr::eq(manifest, image) {
            Reference::Tag(Tag::parse(tag).unwrap())
        } else {
            Reference::Digest(raw.digest)
        };
        store
            .push_manifest(repository, &reference, &raw)
            .await
            .unwrap();
    }
}

fn raw(image: &Image) -> RawManifest {
    RawManifest::new(image.media_type(), image.raw_manifest.clone())
}

fn tag(name: &str) -> Reference {
    Reference::Tag(Tag::parse(name).unwrap())
}

/// Every file below `directory`, recursively.
fn all_files(directory: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(directory) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(all_files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Temp files left below `directory`.
fn leftovers(directory: &Path) -> Vec<PathBuf> {
    all_files(directory)
        .into_iter()
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tmp-")
        })
        .collect()
}
