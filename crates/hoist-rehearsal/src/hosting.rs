//! The `local-registry-hosting` ConfigMap of KEP-1755, as `kubectl get configmap -n kube-public
//! local-registry-hosting -o yaml` (or `-o json`) prints it.
//!
//! <https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry>:
//! under `data`, `localRegistryHosting.vN` keys hold YAML documents; readers start from the most
//! recent version they support and work backwards. hoist knows v1 (`host`,
//! `hostFromClusterNetwork`, `hostFromContainerRuntime`, `help`). JSON is read by the same YAML
//! parser (YAML 1.2 is a superset of JSON), so both give positions in errors.
//!
//! The ConfigMap is the cluster tool's text, not ours: keys a v1 document does not define are
//! reported as notes and otherwise ignored (some writers add `kind:`/`apiVersion:` there), while
//! a document that is not a map, a value that is not a string or a bad host is an error.

use hoist_oci::RegistryName;
use hoist_yaml::{Node, NodeKind};

use crate::error::RehearsalError;

/// The name and namespace KEP-1755 gives the ConfigMap.
pub const CONFIG_MAP_NAME: &str = "local-registry-hosting";
/// See [`CONFIG_MAP_NAME`].
pub const CONFIG_MAP_NAMESPACE: &str = "kube-public";
/// The versions of `localRegistryHosting` hoist reads, newest last.
pub const KNOWN_VERSIONS: [u32; 1] = [1];
const DATA_KEY_PREFIX: &str = "localRegistryHosting.v";

/// The local registry a cluster publishes: where to push, and how the cluster pulls.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalRegistryHosting {
    /// The `localRegistryHosting.vN` read.
    pub version: u32,
    /// `host`: the registry as seen from outside the cluster, where images are pushed
    /// (`localhost:5001`).
    pub host: String,
    /// `hostFromClusterNetwork`: the registry as pods see it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_from_cluster_network: Option<String>,
    /// `hostFromContainerRuntime`: the registry as the container runtime sees it, for image
    /// fields of Kubernetes objects (`kind-registry:5000`); when absent, `host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_from_container_runtime: Option<String>,
    /// `help`: where the cluster tool documents its registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// What was read but not used: newer versions hoist does not know, keys v1 does not define.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl LocalRegistryHosting {
    /// Parses the ConfigMap text (YAML or JSON; a `kind: List` of ConfigMaps is searched for the
    /// one named `local-registry-hosting`). `file` names the input in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, RehearsalError> {
        let invalid = |node: Option<&Node>, key: &str, message: String| RehearsalError::Invalid {
            file: file.to_owned(),
            line: node.map_or(0, |node| node.line),
            column: node.map_or(0, |node| node.column),
            key: key.to_owned(),
            message,
        };
        let root = hoist_yaml::parse(text)
            .map_err(|error| RehearsalError::Invalid {
                file: file.to_owned(),
                line: error.line,
                column: error.column,
                key: String::new(),
                message: error.message,
            })?
            .ok_or_else(|| {
                invalid(
                    None,
                    "",
                    "the input is empty; expected the ConfigMap".into(),
                )
            })?;
        let config_map = find_config_map(&root)
            .map_err(|(node, key, message)| invalid(Some(node), &key, message))?;
        let data = match get(config_map, "data") {
            Some(data) if matches!(data.kind, NodeKind::Mapping(_)) => data,
            Some(data) => {
                return Err(invalid(
                    Some(data),
                    "data",
                    format!("expected a map of strings, found {}", data.describe()),
                ));
            }
            None => {
                return Err(invalid(
                    Some(config_map),
                    "data",
                    "the ConfigMap has no data; expected localRegistryHosting.v1".into(),
                ));
            }
        };
        let NodeKind::Mapping(pairs) = &data.kind else {
            unreachable!("checked above")
        };
        let mut versions: Vec<(u32, &Node, &Node)> = pairs
            .iter()
            .filter_map(|(key, value)| {
                let version = key.as_str()?.strip_prefix(DATA_KEY_PREFIX)?;
                let number: u32 = version.parse().ok().filter(|_| {
                    !version.starts_with('0') && version.bytes().all(|byte| byte.is_ascii_digit())
                })?;
                Some((number, key, value))
            })
            .collect();
        versions.sort_by_key(|(number, _, _)| *number);
        let newest_known = versions
            .iter()
            .rev()
            .find(|(number, _, _)| KNOWN_VERSIONS.contains(number));
        let mut notes: Vec<String> = versions
            .iter()
            .filter(|(number, _, _)| !KNOWN_VERSIONS.contains(number))
            .map(|(number, _, _)| {
                format!("{DATA_KEY_PREFIX}{number} is a version hoist does not know; ignored")
            })
            .collect();
        let Some(&(version, key, value)) = newest_known else {
            let known = KNOWN_VERSIONS
                .iter()
                .map(|number| format!("{DATA_KEY_PREFIX}{number}"))
                .collect::<Vec<_>>()
                .join(", ");
            let message = if versions.is_empty() {
                format!("no {DATA_KEY_PREFIX}N key in data; expected {known}")
            } else {
                let found = versions
                    .iter()
                    .map(|(number, _, _)| format!("{DATA_KEY_PREFIX}{number}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "only {found}, which hoist does not know (it reads {known}); upgrade hoist or \
                     ask the cluster tool to publish {known} too"
                )
            };
            return Err(invalid(Some(data), "data", message));
        };
        let data_key = format!("data.{DATA_KEY_PREFIX}{version}");
        let Some(document) = value.as_str() else {
            return Err(invalid(
                Some(value),
                &data_key,
                format!(
                    "expected a string holding a YAML document, found {}",
                    value.describe()
                ),
            ));
        };
        let mut hosting = parse_v1(document).map_err(|(line, field, message)| {
            // The document is a string inside the ConfigMap: errors point at its key, and say
            // where inside the document.
            let key_path = if field.is_empty() {
                data_key.clone()
            } else {
                format!("{data_key}: {field}")
            };
            let message = match line {
                Some(line) => format!("{message} (line {line} of the value)"),
                None => message,
            };
            invalid(Some(key), &key_path, message)
        })?;
        hosting.version = version;
        notes.append(&mut hosting.notes);
        hosting.notes = notes;
        Ok(hosting)
    }

    /// `host` as a registry name (images are pushed to `<host>/<image>`).
    pub fn registry(&self) -> RegistryName {
        RegistryName::parse(&self.host).expect("validated when parsed")
    }

    /// Where the cluster pulls from: `hostFromContainerRuntime`, else `host` (KEP-1755).
    pub fn pull_host(&self) -> &str {
        self.host_from_container_runtime
            .as_deref()
            .unwrap_or(&self.host)
    }
}

/// The ConfigMap itself, or the one named `local-registry-hosting` in a `kind: List`.
fn find_config_map(root: &Node) -> Result<&Node, (&Node, String, String)> {
    if !matches!(root.kind, NodeKind::Mapping(_)) {
        return Err((
            root,
            String::new(),
            format!("expected the ConfigMap (a map), found {}", root.describe()),
        ));
    }
    match get(root, "kind").and_then(Node::as_str) {
        Some("List") => {
            let items = match get(root, "items").map(|items| &items.kind) {
                Some(NodeKind::Sequence(items)) => items,
                _ => return Err((root, "items".into(), "a List without items".into())),
            };
            items
                .iter()
                .find(|item| {
                    get(item, "kind").and_then(Node::as_str) == Some("ConfigMap")
                        && metadata(item, "name") == Some(CONFIG_MAP_NAME)
                        && metadata(item, "namespace")
                            .is_none_or(|namespace| namespace == CONFIG_MAP_NAMESPACE)
                })
                .ok_or_else(|| {
                    (
                        root,
                        "items".to_owned(),
                        format!(
                            "no ConfigMap {CONFIG_MAP_NAMESPACE}/{CONFIG_MAP_NAME} in this List"
                        ),
                    )
                })
        }
        Some("ConfigMap") | None => {
            let kind = get(root, "kind").unwrap_or(root);
            match (metadata(root, "name"), metadata(root, "namespace")) {
                (Some(name), _) if name != CONFIG_MAP_NAME => Err((
                    kind,
                    "metadata.name".into(),
                    format!(
                        "this is the ConfigMap {name:?}; KEP-1755 names it {CONFIG_MAP_NAME:?} \
                         (in {CONFIG_MAP_NAMESPACE})"
                    ),
                )),
                (_, Some(namespace)) if namespace != CONFIG_MAP_NAMESPACE => Err((
                    kind,
                    "metadata.namespace".into(),
                    format!(
                        "this ConfigMap is in {namespace:?}; KEP-1755 puts it in \
                         {CONFIG_MAP_NAMESPACE:?}"
                    ),
                )),
                _ => Ok(root),
            }
        }
        Some(other) => Err((
            get(root, "kind").unwrap_or(root),
            "kind".into(),
            format!("expected a ConfigMap, found a {other}"),
        )),
    }
}

/// The value of `key` in a map (the first, if repeated).
fn get<'n>(map: &'n Node, key: &str) -> Option<&'n Node> {
    match &map.kind {
        NodeKind::Mapping(pairs) => pairs
            .iter()
            .find(|(candidate, _)| candidate.as_str() == Some(key))
            .map(|(_, value)| value),
        _ => None,
    }
}

fn metadata<'n>(object: &'n Node, key: &str) -> Option<&'n str> {
    get(object, "metadata")
        .and_then(|metadata| get(metadata, key))
        .and_then(Node::as_str)
}

/// A v1 document: `(line inside the document, key, message)` on error.
type V1Error = (Option<u32>, String, String);

fn parse_v1(document: &str) -> Result<LocalRegistryHosting, V1Error> {
    let root = hoist_yaml::parse(document)
        .map_err(|error| (Some(error.line), String::new(), error.message))?
        .ok_or((
            None,
            String::new(),
            "the document is empty; expected host:".into(),
        ))?;
    let NodeKind::Mapping(pairs) = &root.kind else {
        return Err((
            Some(root.line),
            String::new(),
            format!("expected a map (host: …), found {}", root.describe()),
        ));
    };
    let mut hosting = LocalRegistryHosting {
        version: 1,
        host: String::new(),
        host_from_cluster_network: None,
        host_from_container_runtime: None,
        help: None,
        notes: Vec::new(),
    };
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in pairs {
        let Some(name) = key.as_str() else {
            return Err((
                Some(key.line),
                String::new(),
                "a key that is not a string".into(),
            ));
        };
        let field = match name {
            "host" | "hostFromClusterNetwork" | "hostFromContainerRuntime" | "help" => name,
            _ => {
                hosting.notes.push(format!(
                    "key {name:?} is not part of localRegistryHosting.v1; ignored"
                ));
                continue;
            }
        };
        if seen.contains(&field) {
            return Err((Some(key.line), field.to_owned(), "duplicate key".into()));
        }
        seen.push(field);
        let text = match (&value.kind, value.as_str()) {
            (NodeKind::Scalar { .. }, Some(text)) => text.trim(),
            // An explicit null is "not set", as the Go decoder reads it.
            (NodeKind::Scalar { .. }, None) => continue,
            _ => {
                return Err((
                    Some(value.line),
                    field.to_owned(),
                    format!("expected a string, found {}", value.describe()),
                ));
            }
        };
        if text.is_empty() {
            continue;
        }
        if field != "help" {
            check_host(text).map_err(|message| (Some(value.line), field.to_owned(), message))?;
        }
        let text = text.to_owned();
        match field {
            "host" => hosting.host = text,
            "hostFromClusterNetwork" => hosting.host_from_cluster_network = Some(text),
            "hostFromContainerRuntime" => hosting.host_from_container_runtime = Some(text),
            _ => hosting.help = Some(text),
        }
    }
    if hosting.host.is_empty() {
        return Err((
            None,
            "host".into(),
            "no host: the ConfigMap names no registry to push to from outside the cluster".into(),
        ));
    }
    Ok(hosting)
}

/// `HOST[:PORT]`, nothing else.
fn check_host(text: &str) -> Result<(), String> {
    if text.contains('/') {
        return Err(format!(
            "{text:?} is not HOST[:PORT] (a registry host, without scheme or path)"
        ));
    }
    RegistryName::parse(text)
        .map(drop)
        .map_err(|error| error.to_string())
}
