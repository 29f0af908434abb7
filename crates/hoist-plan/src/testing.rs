//! Builders for hand-made manifests in unit tests.

use std::path::Path;
use std::sync::Arc;

use hoist_manifest::{DigestTags, Image, Location, Manifest, Registry};
use hoist_oci::{Digest, RegistryName, RepositoryPath, Tag};

/// `sha256:` + the hex digit `c` 64 times.
pub(crate) fn digest(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
}

fn location(file: &str, line: u32) -> Location {
    Location {
        file: Arc::from(Path::new(file)),
        line,
        column: 1,
    }
}

/// An image as `(name, [(digest character, [tags])])`.
pub(crate) type ImageSpec<'a> = (&'a str, &'a [(char, &'a [&'a str])]);

/// A manifest in `file` promoting from `source` to `destinations`, with images
/// `(name, [(digest, [tags])])`; each digest line gets its own line number.
pub(crate) fn manifest(
    file: &str,
    source: &str,
    destinations: &[&str],
    images: &[ImageSpec<'_>],
) -> Manifest {
    let file_path: Arc<Path> = Arc::from(Path::new(file));
    let mut registries = vec![Registry {
        name: RegistryName::parse(source).unwrap(),
        src: true,
        service_account: None,
        location: location(file, 1),
    }];
    registries.extend(destinations.iter().map(|name| Registry {
        name: RegistryName::parse(name).unwrap(),
        src: false,
        service_account: None,
        location: location(file, 2),
    }));
    let mut line = 10;
    let images = images
        .iter()
        .map(|(name, dmap)| Image {
            name: RepositoryPath::parse(name).unwrap(),
            location: location(file, line),
            dmap: dmap
                .iter()
                .map(|(c, tags)| {
                    line += 1;
                    DigestTags {
                        digest: digest(*c),
                        tags: tags.iter().map(|t| Tag::parse(t).unwrap()).collect(),
                        location: location(file, line),
                    }
                })
                .collect(),
        })
        .collect();
    Manifest {
        manifest_file: file_path.clone(),
        images_file: file_path,
        project: None,
        registries,
        images,
    }
}
