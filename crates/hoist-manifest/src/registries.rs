//! Decoding `registries:` and its rules: valid names, no registry twice, exactly one source.
//!
//! A registry listed twice with identical fields is a warning: the promoter collapses the two
//! entries, so the manifest means what it would mean with one (the real boskos manifest lists
//! us-west1 twice). Twice with different fields (`src`, `service-account`) is an error: which
//! one is meant is unknown.

use hoist_oci::RegistryName;

use crate::decode::{boolean, fields, non_empty_string, required};
use crate::model::Registry;
use crate::report::{Report, join_key, name_problem};
use hoist_yaml::{Node, NodeKind};

/// Decodes the `registries:` list. Invalid entries, a registry listed a second time and a second
/// `src: true` are reported and left out, so the result names each registry once and has at most
/// one source. Findings about the list as a whole point at its `key`.
pub(crate) fn decode_registries(report: &mut Report, key: &Node, node: &Node) -> Vec<Registry> {
    let NodeKind::Sequence(items) = &node.kind else {
        report.error(
            node,
            "registries".to_owned(),
            format!(
                "expected a list of registries (- name: …), found {}",
                node.describe()
            ),
        );
        return Vec::new();
    };
    let mut registries: Vec<Registry> = Vec::with_capacity(items.len());
    // Where the source was declared, counting entries dropped for other reasons, so that an
    // invalid source entry does not also produce a misleading "no source" error.
    let mut first_source_line: Option<u32> = None;
    // A `src:` that is not a boolean may well have meant true: then "no source" would mislead.
    let mut unreadable_source = false;
    for (index, item) in items.iter().enumerate() {
        let path = format!("registries[{index}]");
        let Some([name, src, service_account]) = fields(
            report,
            item,
            &path,
            "a registry",
            ["name", "src", "service-account"],
        ) else {
            continue;
        };
        let source = match src {
            None => Some(false),
            Some(node) => boolean(report, node, join_key(&path, "src")),
        };
        unreadable_source |= source.is_none();
        let name = required(report, item, name, &path, "name")
            .and_then(|node| registry_name(report, node, join_key(&path, "name")));
        let service_account = match service_account {
            None => Some(None),
            Some(node) => non_empty_string(
                report,
                node,
                join_key(&path, "service-account"),
                "a service account email",
            )
            .map(|text| Some(text.to_owned())),
        };
        // An exact repetition of an entry changes nothing: warn and drop it, before the second
        // `src: true` it may carry is taken for a second source.
        if let (Some((name, name_node)), Some(src), Some(service_account)) =
            (&name, source, &service_account)
            && let Some(first) = registries.iter().find(|registry| registry.name == *name)
            && first.src == src
            && first.service_account == *service_account
        {
            report.warning(
                name_node,
                join_key(&path, "name"),
                format!(
                    "registry listed twice with identical fields, first at line {}; the \
                     promoter uses it once (remove this entry)",
                    first.location.line
                ),
            );
            continue;
        }
        let mut second_source = false;
        if let (Some(true), Some(src)) = (source, src) {
            match first_source_line {
                Some(first) => {
                    report.error(
                        src,
                        join_key(&path, "src"),
                        format!(
                            "a second source registry (src: true), first at line {first}; \
                             exactly one registry is the source"
                        ),
                    );
                    second_source = true;
                }
                None => first_source_line = Some(src.line),
            }
        }
        let (Some((name, name_node)), Some(src), Some(service_account)) =
            (name, source, service_account)
        else {
            continue;
        };
        if let Some(first) = registries.iter().find(|registry| registry.name == name) {
            report.error(
                name_node,
                join_key(&path, "name"),
                format!(
                    "registry listed twice in this manifest with different fields, first at \
                     line {}; list each registry once",
                    first.location.line
                ),
            );
            continue;
        }
        if second_source {
            continue;
        }
        registries.push(Registry {
            name,
            src,
            service_account,
            location: report.location(item),
        });
    }
    if first_source_line.is_none() && !unreadable_source && !items.is_empty() {
        report.error(
            key,
            "registries".to_owned(),
            "no registry has src: true; exactly one registry must be the source",
        );
    }
    if items.is_empty() {
        report.error(
            key,
            "registries".to_owned(),
            "the list is empty; expected the source registry and at least one destination",
        );
    }
    registries
}

/// A registry name, parsed, with its node (for later messages).
fn registry_name<'a>(
    report: &mut Report,
    node: &'a Node,
    path: String,
) -> Option<(RegistryName, &'a Node)> {
    let text = non_empty_string(report, node, path.clone(), "a registry name")?;
    match RegistryName::parse(text) {
        Ok(name) => Some((name, node)),
        Err(error) => {
            report.error(node, path, name_problem(&error));
            None
        }
    }
}
