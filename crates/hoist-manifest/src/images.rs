//! Decoding an image list (`images:` of a plain manifest, or a thin `images.yaml`) and its rules.
//!
//! # Repeated image names
//!
//! The real data repeats image names on purpose: kops, etcd-manager and etcdadm append one block
//! per release (`# 1.19.0-alpha.2` then `- name: dns-controller` again), and etcdadm re-lists a
//! digest in a later block to give it the next release's tag (`etcd-backup`
//! `sha256:1443fa…` is `v3.0.20220128` in one block and `v3.0.20220203` in the next). A YAML map
//! cannot hold one digest twice, so a per-release layout has to repeat the name. The promoter
//! turns every (image, digest, tag) into an edge and merges them, so these repetitions mean
//! exactly what one merged entry would mean. Hence:
//!
//! - entries that merely split an image, or re-list a digest with other tags: no finding;
//! - the same (digest, tag) pair listed again in another entry: a warning (redundant, harmless);
//! - one tag on two different digests of the same image, in one entry or across entries: an
//!   error, because a tag names one digest and the promoter would have to pick one.
//!
//! An entry without digests (no `dmap`, a null one or `{}`) is a warning: the promoter accepts
//! it and does nothing.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use hoist_oci::{Digest, RepositoryPath, Tag};

use crate::decode::{fields, key_text, non_empty_string, required};
use crate::model::{DigestTags, Image};
use crate::report::{Report, digest_problem, join_key, name_problem};
use hoist_yaml::{Node, NodeKind};

/// Where each tag of one image name was first given: its digest and line.
type TagOwners = HashMap<Tag, (Digest, u32)>;

/// Decodes a list of images. Invalid images, digests and tags are reported and left out.
pub(crate) fn decode_images(report: &mut Report, node: &Node) -> Vec<Image> {
    let NodeKind::Sequence(items) = &node.kind else {
        report.error(
            node,
            "images".to_owned(),
            format!(
                "expected a list of images (- name: … dmap: …), found {}",
                node.describe()
            ),
        );
        return Vec::new();
    };
    let mut images = Vec::with_capacity(items.len());
    let mut tag_owners: HashMap<RepositoryPath, TagOwners> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let path = format!("images[{index}]");
        let Some([name, dmap]) = fields(report, item, &path, "an image", ["name", "dmap"]) else {
            continue;
        };
        let name = required(report, item, name, &path, "name")
            .and_then(|node| image_name(report, node, join_key(&path, "name")));
        let Some(name) = name else {
            continue;
        };
        // The promoter accepts an entry without digests and promotes nothing for it; the frozen
        // k8s.gcr.io tree has one (kmm, a name alone). Worth a warning, not a failed check.
        let no_digests = match dmap {
            None => Some(item),
            Some(node)
                if node.is_null()
                    || matches!(&node.kind, NodeKind::Mapping(pairs) if pairs.is_empty()) =>
            {
                Some(node)
            }
            Some(_) => None,
        };
        if let Some(node) = no_digests {
            let message =
                "no digests: this entry promotes nothing (write dmap: \"sha256:…\": [tags])";
            report.warning(node, join_key(&path, "dmap"), message);
        }
        let owners = tag_owners.entry(name.clone()).or_default();
        let dmap = match dmap {
            Some(node) if no_digests.is_none() => {
                decode_dmap(report, node, &join_key(&path, "dmap"), owners)
            }
            _ => Vec::new(),
        };
        images.push(Image {
            name,
            dmap,
            location: report.location(item),
        });
    }
    images
}

fn image_name(report: &mut Report, node: &Node, path: String) -> Option<RepositoryPath> {
    let text = non_empty_string(report, node, path.clone(), "an image name")?;
    RepositoryPath::parse(text)
        .map_err(|error| report.error(node, path, name_problem(&error)))
        .ok()
}

/// Decodes `dmap:`, a map of digest to tag list, checking tags against the image's other entries.
fn decode_dmap(
    report: &mut Report,
    node: &Node,
    path: &str,
    owners: &mut TagOwners,
) -> Vec<DigestTags> {
    let NodeKind::Mapping(pairs) = &node.kind else {
        report.error(
            node,
            path.to_owned(),
            format!(
                "expected a map of digest to tag list (\"sha256:…\": [\"v1\"]), found {}",
                node.describe()
            ),
        );
        return Vec::new();
    };
    let mut result = Vec::with_capacity(pairs.len());
    let mut first_lines: HashMap<&str, u32> = HashMap::with_capacity(pairs.len());
    for (key, value) in pairs {
        let Some(text) = key_text(report, key, path) else {
            continue;
        };
        let digest_path = || format!("{path}[{text:?}]");
        match first_lines.entry(text) {
            Entry::Occupied(first) => {
                let message = format!("duplicate digest, first at line {}", first.get());
                report.error(key, digest_path(), message);
                continue;
            }
            Entry::Vacant(slot) => {
                slot.insert(key.line);
            }
        }
        let digest = match Digest::parse(text) {
            Ok(digest) => digest,
            Err(error) => {
                report.error(key, digest_path(), digest_problem(&error));
                continue;
            }
        };
        let NodeKind::Sequence(tag_nodes) = &value.kind else {
            let message = format!(
                "expected a list of tags ([] to promote by digest only), found {}",
                value.describe()
            );
            report.error(value, digest_path(), message);
            continue;
        };
        let tags = decode_tags(report, tag_nodes, digest, &digest_path(), owners);
        result.push(DigestTags {
            digest,
            tags,
            location: report.location(key),
        });
    }
    result
}

/// Decodes one digest's tag list.
fn decode_tags(
    report: &mut Report,
    tag_nodes: &[Node],
    digest: Digest,
    path: &str,
    owners: &mut TagOwners,
) -> Vec<Tag> {
    let mut tags: Vec<Tag> = Vec::with_capacity(tag_nodes.len());
    let mut columns: Vec<(u32, u32)> = Vec::with_capacity(tag_nodes.len());
    for (index, tag_node) in tag_nodes.iter().enumerate() {
        let tag_path = || format!("{path}[{index}]");
        let Some(text) = non_empty_string(report, tag_node, tag_path(), "a tag") else {
            continue;
        };
        let tag = match Tag::parse(text) {
            Ok(tag) => tag,
            Err(error) => {
                report.error(tag_node, tag_path(), name_problem(&error));
                continue;
            }
        };
        if let Some(position) = tags.iter().position(|seen| *seen == tag) {
            let (line, column) = columns[position];
            let message =
                format!("tag listed twice for this digest, first at line {line} column {column}");
            report.error(tag_node, tag_path(), message);
            continue;
        }
        match owners.entry(tag.clone()) {
            Entry::Vacant(slot) => {
                slot.insert((digest, tag_node.line));
            }
            Entry::Occupied(owner) => {
                let (owner_digest, line) = *owner.get();
                if owner_digest != digest {
                    let message = format!(
                        "tag already points at {owner_digest} (line {line}); a tag names one \
                         digest"
                    );
                    report.error(tag_node, tag_path(), message);
                    continue;
                }
                let message = format!(
                    "this digest already has this tag in another entry of the same image \
                     (line {line}); entries of one image are merged, so this is redundant"
                );
                report.warning(tag_node, tag_path(), message);
            }
        }
        tags.push(tag);
        columns.push((tag_node.line, tag_node.column));
    }
    tags
}
