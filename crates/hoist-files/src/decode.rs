//! Strict decoding of the two kinds of file manifest: a filestores manifest
//! (`filestores: [{base, service-account, src}]`) and a file list (`files: [{name, sha256}]`).
//!
//! kpromo reads both with a lenient YAML decoder that ignores unknown keys; here an unknown or
//! duplicate key, a value of the wrong type, a bad base, name or sha256 is an error naming file,
//! line, column and key. Every problem is reported and decoding goes on, so one run lists them
//! all; an invalid entry is left out of the result.

use hoist_object::{BackendOptions, BackendUrl};
use hoist_oci::Digest;
use hoist_yaml::{Node, NodeKind};

use crate::model::{FileEntry, Filestore};
use crate::report::{Report, join_key};

/// The keys of a filestore: kpromo's three, then hoist's ways to reach a bucket.
const FILESTORE_KEYS: [&str; 6] = [
    "base",
    "service-account",
    "src",
    "endpoint",
    "region",
    "pathStyle",
];

/// A filestores manifest: `filestores:` only. `files:` is an error here (kpromo refuses it too:
/// files live in their own lists, so that one pull request cannot change both).
pub(crate) fn decode_filestores(report: &mut Report, root: Option<&Node>) -> Vec<Filestore> {
    let Some(root) = root else {
        report.file_error(
            "",
            "the file holds no YAML document; expected a map with filestores:",
        );
        return Vec::new();
    };
    let Some([filestores, files]) =
        report.fields(root, "", "a filestores manifest", ["filestores", "files"])
    else {
        return Vec::new();
    };
    if let Some(files) = files {
        report.error(
            key_node(root, "files").unwrap_or(files),
            "files".to_owned(),
            "files are not allowed in a filestores manifest; list them in the file manifests \
             (--files, or manifests/<p>/)",
        );
    }
    let Some(filestores) = report.required(root, filestores, "", "filestores") else {
        return Vec::new();
    };
    let NodeKind::Sequence(items) = &filestores.kind else {
        report.error(
            filestores,
            "filestores".to_owned(),
            format!(
                "expected a list of filestores (- base: …), found {}",
                filestores.describe()
            ),
        );
        return Vec::new();
    };
    let decoded: Vec<Filestore> = items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| decode_filestore(report, item, &format!("filestores[{index}]")))
        .collect();
    validate_filestores(
        report,
        key_node(root, "filestores").unwrap_or(root),
        items,
        &decoded,
    );
    decoded
}

fn decode_filestore(report: &mut Report, item: &Node, path: &str) -> Option<Filestore> {
    let [base, service_account, src, endpoint, region, path_style] =
        report.fields(item, path, "a filestore", FILESTORE_KEYS)?;
    let before = report.diagnostics.len();
    let base_node = report.required(item, base, path, "base");
    let base_text =
        base_node.and_then(|node| report.string(node, join_key(path, "base"), "a base URL"));
    let url = match (base_node, base_text) {
        (Some(node), Some(text)) => match parse_base(text) {
            Ok(url) => Some(url),
            Err(message) => {
                report.error(node, join_key(path, "base"), message);
                None
            }
        },
        _ => None,
    };
    let src = match src {
        Some(node) => report.boolean(node, join_key(path, "src")).unwrap_or(false),
        None => false,
    };
    let service_account = service_account.and_then(|node| {
        report
            .string(node, join_key(path, "service-account"), "a service account")
            .map(str::to_owned)
    });
    let endpoint = endpoint.and_then(|node| {
        let text = report.string(
            node,
            join_key(path, "endpoint"),
            "an http:// or https:// URL",
        )?;
        let trimmed = text.trim_end_matches('/');
        let valid = trimmed
            .split_once("://")
            .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && !rest.is_empty());
        if !valid {
            report.error(
                node,
                join_key(path, "endpoint"),
                "expected an http:// or https:// URL",
            );
            return None;
        }
        Some((trimmed.to_owned(), node))
    });
    let region = region.and_then(|node| {
        report
            .string(node, join_key(path, "region"), "a region")
            .map(|text| (text.to_owned(), node))
    });
    let path_style = path_style.and_then(|node| {
        report
            .boolean(node, join_key(path, "pathStyle"))
            .map(|value| (value, node))
    });
    let url = url?;
    // Options that do not apply to the scheme are mistakes, not no-ops.
    let s3 = matches!(url, BackendUrl::S3 { .. });
    for (key, node) in [
        ("region", region.as_ref().map(|(_, node)| *node)),
        ("pathStyle", path_style.as_ref().map(|(_, node)| *node)),
    ] {
        if let (false, Some(node)) = (s3, node) {
            report.error(
                node,
                join_key(path, key),
                format!("{key} applies only to s3:// bases"),
            );
        }
    }
    if let (BackendUrl::File { .. }, Some((_, node))) = (&url, &endpoint) {
        report.error(
            node,
            join_key(path, "endpoint"),
            "endpoint does not apply to file: bases",
        );
    }
    if report.diagnostics.len() > before {
        return None;
    }
    Some(Filestore {
        base: base_text?.to_owned(),
        url,
        src,
        service_account,
        options: BackendOptions {
            region: region.map(|(text, _)| text),
            endpoint: endpoint.map(|(text, _)| text),
            path_style: path_style.is_some_and(|(value, _)| value),
        },
        location: report.location(item),
    })
}

/// `gs://…`, `s3://…` or `file:…`; the error text says what is wrong.
fn parse_base(text: &str) -> Result<BackendUrl, String> {
    if !["gs://", "s3://", "file:"]
        .iter()
        .any(|scheme| text.starts_with(scheme))
    {
        return Err(
            "unsupported base: expected gs://bucket[/prefix], s3://bucket[/prefix] or file:DIR"
                .to_owned(),
        );
    }
    BackendUrl::parse(text)
}

/// Exactly one source, at least one destination, no base twice.
fn validate_filestores(report: &mut Report, list: &Node, items: &[Node], decoded: &[Filestore]) {
    let sources: Vec<&Filestore> = decoded.iter().filter(|store| store.src).collect();
    // Entries that failed to decode are unknown: do not add "no source" on top of their errors.
    let complete = decoded.len() == items.len();
    if sources.is_empty() && complete {
        report.error(
            list,
            "filestores".to_owned(),
            "no source filestore: exactly one entry must have src: true",
        );
    }
    for extra in sources.iter().skip(1) {
        report.diagnostics.push(hoist_manifest::Diagnostic {
            manifest: None,
            severity: hoist_manifest::Severity::Error,
            file: extra.location.file.clone(),
            line: extra.location.line,
            column: extra.location.column,
            key_path: format!("filestores[{}].src", index_of(decoded, extra)),
            value: Some("true".to_owned()),
            message: format!(
                "a second source filestore (the first is {} at line {}): exactly one entry may have src: true",
                sources[0].base, sources[0].location.line
            ),
        });
    }
    if complete && !decoded.is_empty() && decoded.iter().all(|store| store.src) {
        report.error(
            list,
            "filestores".to_owned(),
            "no destination filestore: at least one entry must be without src: true",
        );
    }
    for (index, store) in decoded.iter().enumerate() {
        if let Some(first) = decoded[..index].iter().find(|other| other.url == store.url) {
            report.diagnostics.push(hoist_manifest::Diagnostic {
                manifest: None,
                severity: hoist_manifest::Severity::Error,
                file: store.location.file.clone(),
                line: store.location.line,
                column: store.location.column,
                key_path: format!("filestores[{index}].base"),
                value: Some(store.base.clone()),
                message: format!(
                    "the same base as the filestore at line {} ({}): every filestore must be a different place",
                    first.location.line, first.base
                ),
            });
        }
    }
}

fn index_of(decoded: &[Filestore], store: &Filestore) -> usize {
    decoded
        .iter()
        .position(|other| std::ptr::eq(other, store))
        .unwrap_or_default()
}

/// A file list: `files:` only (`filestores:` is an error here). A file with no document at all
/// (empty, or only comments) is an empty list.
pub(crate) fn decode_files(report: &mut Report, root: Option<&Node>) -> Vec<FileEntry> {
    let Some(root) = root else {
        return Vec::new();
    };
    let Some([files, filestores]) =
        report.fields(root, "", "a file manifest", ["files", "filestores"])
    else {
        return Vec::new();
    };
    if let Some(filestores) = filestores {
        report.error(
            key_node(root, "filestores").unwrap_or(filestores),
            "filestores".to_owned(),
            "filestores are not allowed in a file manifest; they live in the filestores manifest \
             (--filestores, or filestores/<p>/filepromoter-manifest.yaml)",
        );
    }
    let Some(files) = report.required(root, files, "", "files") else {
        return Vec::new();
    };
    let NodeKind::Sequence(items) = &files.kind else {
        report.error(
            files,
            "files".to_owned(),
            format!(
                "expected a list of files (- name: …, sha256: …), found {}",
                files.describe()
            ),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| decode_file(report, item, &format!("files[{index}]")))
        .collect()
}

fn decode_file(report: &mut Report, item: &Node, path: &str) -> Option<FileEntry> {
    let [name, sha256] = report.fields(item, path, "a file", ["name", "sha256"])?;
    let name = report.required(item, name, path, "name").and_then(|node| {
        let text = report.string(node, join_key(path, "name"), "a relative file name")?;
        match hoist_object::check_key(text) {
            Ok(()) => Some(text.to_owned()),
            Err(reason) => {
                report.error(
                    node,
                    join_key(path, "name"),
                    format!(
                        "invalid file name: {reason}; names are paths relative to each \
                         filestore's base (no leading '/', no '..')"
                    ),
                );
                None
            }
        }
    });
    let sha256 = report
        .required(item, sha256, path, "sha256")
        .and_then(|node| {
            let text = report.string(node, join_key(path, "sha256"), "a sha256 (64 hex digits)")?;
            match parse_sha256(text) {
                Ok(digest) => Some(digest),
                Err(reason) => {
                    report.error(node, join_key(path, "sha256"), reason);
                    None
                }
            }
        });
    Some(FileEntry {
        name: name?,
        sha256: sha256?,
        location: report.location(item),
    })
}

/// 64 hex digits (either case, as kpromo accepts them) as a digest.
pub(crate) fn parse_sha256(text: &str) -> Result<Digest, String> {
    if text.len() != 64 {
        return Err(format!(
            "invalid sha256: {} characters instead of 64 hex digits",
            text.chars().count()
        ));
    }
    if !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err("invalid sha256: not hex; expected 64 hex digits".to_owned());
    }
    Digest::parse(&format!("sha256:{}", text.to_ascii_lowercase()))
        .map_err(|error| format!("invalid sha256: {error}"))
}

/// The key node `key` of a map, for findings about its whole value.
fn key_node<'n>(map: &'n Node, key: &str) -> Option<&'n Node> {
    match &map.kind {
        NodeKind::Mapping(pairs) => pairs
            .iter()
            .find(|(candidate, _)| candidate.as_str() == Some(key))
            .map(|(candidate, _)| candidate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_64_hex_digits_in_either_case() {
        let lower = "4f2f040fa2bfe9bea64911a2a756e8a1727a8bfd757c5e031631a6e699fcf246";
        let digest = parse_sha256(lower).unwrap();
        assert_eq!(parse_sha256(&lower.to_ascii_uppercase()).unwrap(), digest);
        assert!(parse_sha256("abcd").unwrap_err().contains("4 characters"));
        assert!(
            parse_sha256(&"g".repeat(64))
                .unwrap_err()
                .contains("not hex")
        );
        assert!(parse_sha256(&format!("sha256:{}", &lower[7..])).is_err());
    }

    #[test]
    fn bases_are_gs_s3_or_file() {
        assert!(parse_base("gs://k8s-staging-cri-tools/releases/").is_ok());
        assert!(parse_base("s3://bucket").is_ok());
        assert!(parse_base("file:relative/dir").is_ok());
        assert!(parse_base("https://example.com/x").is_err());
        assert!(parse_base("gs://UPPER").is_err());
    }
}
