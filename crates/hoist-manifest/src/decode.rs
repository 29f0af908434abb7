//! Strict decoding of one manifest file's YAML tree: the top-level shapes, and the helpers the
//! registry and image decoders share.
//!
//! Every problem becomes a diagnostic in the file's [`Report`]; decoding goes on with the next
//! entry, and an invalid entry is left out of the result.

use crate::images::decode_images;
use crate::model::{Image, Registry};
use crate::registries::decode_registries;
use crate::report::{Report, join_key};
use hoist_yaml::{FieldError, Node, NodeKind};

/// The keys of a map, checked: each of `allowed` mapped to its value, if present.
///
/// Reports a value that is not a map, keys that are not strings, unknown keys and duplicate
/// keys (the first one wins). `None` when `node` is not a map.
pub(crate) fn fields<'a, const N: usize>(
    report: &mut Report,
    node: &'a Node,
    path: &str,
    what: &str,
    allowed: [&str; N],
) -> Option<[Option<&'a Node>; N]> {
    hoist_yaml::fields(node, allowed, |error| match error {
        FieldError::NotMap => report.error(
            node,
            path.to_owned(),
            format!(
                "expected {what} (a map with keys {}), found {}",
                allowed.join(", "),
                node.describe()
            ),
        ),
        FieldError::KeyNotString(key) => report_key_not_string(report, key, path),
        FieldError::Unknown(key, name) => report.error(
            key,
            join_key(path, name),
            hoist_yaml::unknown_key_message(&allowed),
        ),
        FieldError::Duplicate(key, name, first_line) => report.error(
            key,
            join_key(path, name),
            hoist_yaml::duplicate_key_message(first_line),
        ),
    })
}

/// The text of a map key; reports keys that are collections or null.
pub(crate) fn key_text<'a>(report: &mut Report, key: &'a Node, path: &str) -> Option<&'a str> {
    let text = key.as_str();
    if text.is_none() {
        report_key_not_string(report, key, path);
    }
    text
}

fn report_key_not_string(report: &mut Report, key: &Node, path: &str) {
    report.error(
        key,
        path.to_owned(),
        format!("expected a string as map key, found {}", key.describe()),
    );
}

/// A required key's value, or an error at the map that lacks it.
pub(crate) fn required<'a>(
    report: &mut Report,
    map: &Node,
    value: Option<&'a Node>,
    path: &str,
    key: &str,
) -> Option<&'a Node> {
    if value.is_none() {
        report.error(
            map,
            join_key(path, key),
            format!("missing required key {key:?}"),
        );
    }
    value
}

/// A string value that must not be empty; reports collections, nulls and "".
pub(crate) fn non_empty_string<'a>(
    report: &mut Report,
    node: &'a Node,
    path: String,
    what: &str,
) -> Option<&'a str> {
    match node.as_str() {
        Some("") => report.error(
            node,
            path,
            format!("expected {what}, found an empty string"),
        ),
        Some(text) => return Some(text),
        None => report.error(
            node,
            path,
            format!("expected {what} (a string), found {}", node.describe()),
        ),
    }
    None
}

/// `true` or `false`, written plain. Quoted `"true"`, `yes`, `1` and the like are errors: the
/// promoter reads `src` as a YAML boolean, and a near miss must not silently mean `false`.
pub(crate) fn boolean(report: &mut Report, node: &Node, path: String) -> Option<bool> {
    match &node.kind {
        NodeKind::Scalar { text, plain: true } if text == "true" => Some(true),
        NodeKind::Scalar { text, plain: true } if text == "false" => Some(false),
        _ => {
            report.error(
                node,
                path,
                format!("expected true or false, found {}", node.describe()),
            );
            None
        }
    }
}

/// The key `key` of `map` itself (for findings about its whole value), or `map` if absent.
fn key_node<'a>(map: &'a Node, key: &str) -> &'a Node {
    match &map.kind {
        NodeKind::Mapping(pairs) => pairs
            .iter()
            .find(|(candidate, _)| candidate.as_str() == Some(key))
            .map_or(map, |(candidate, _)| candidate),
        _ => map,
    }
}

/// A plain manifest: `registries:` and `images:` in one map. `None` when the file has no usable
/// top-level map.
pub(crate) fn decode_plain(
    report: &mut Report,
    root: Option<&Node>,
) -> Option<(Vec<Registry>, Vec<Image>)> {
    let Some(root) = root else {
        report.file_error(
            "the file holds no YAML document; expected a map with registries: and images:",
        );
        return None;
    };
    let [registries, images] = fields(
        report,
        root,
        "",
        "a promoter manifest",
        ["registries", "images"],
    )?;
    let registries = required(report, root, registries, "", "registries")
        .map(|node| decode_registries(report, key_node(root, "registries"), node))
        .unwrap_or_default();
    let images = required(report, root, images, "", "images")
        .map(|node| decode_images(report, node))
        .unwrap_or_default();
    Some((registries, images))
}

/// A thin layout's `promoter-manifest.yaml`: `registries:` and an optional `imagesPath:`
/// (returned as its node, for the layout to check). `None` when the file has no usable
/// top-level map.
pub(crate) fn decode_thin_manifest<'a>(
    report: &mut Report,
    root: Option<&'a Node>,
) -> Option<(Vec<Registry>, Option<&'a Node>)> {
    let Some(root) = root else {
        report.file_error("the file holds no YAML document; expected a map with registries:");
        return None;
    };
    let [registries, images_path] = fields(
        report,
        root,
        "",
        "a thin promoter manifest",
        ["registries", "imagesPath"],
    )?;
    let registries = required(report, root, registries, "", "registries")
        .map(|node| decode_registries(report, key_node(root, "registries"), node))
        .unwrap_or_default();
    Some((registries, images_path))
}

/// A thin layout's `images.yaml`: a top-level list of images. A file with no document (only
/// comments) is an empty list: projects start out that way ("# TODO: add images"). `None` when
/// the file is not a list at all (reported): its images are unknown, not absent.
pub(crate) fn decode_images_file(report: &mut Report, root: Option<&Node>) -> Option<Vec<Image>> {
    let Some(root) = root else {
        return Some(Vec::new());
    };
    let images = decode_images(report, root);
    matches!(root.kind, NodeKind::Sequence(_)).then_some(images)
}
