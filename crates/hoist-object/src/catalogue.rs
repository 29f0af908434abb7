//! The catalogue of mirror backends (`backends.yaml`), decoded strictly.
//!
//! Every problem (unknown or duplicate key, wrong type, bad URL, a name used twice) is collected
//! with its `file:line:column` and key, and all of them are reported in one error, so a broken
//! file is fixed in one pass. Credentials never live here: see [`crate::open`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use hoist_yaml::{FieldError, Node, NodeKind, join_key};

use crate::error::ObjectError;
use crate::selector::{Selector, is_label_key, is_label_value};

/// Where a backend keeps its blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendUrl {
    /// `s3://bucket[/prefix]`.
    S3 {
        /// The bucket name.
        bucket: String,
        /// The key prefix without leading or trailing `/`; empty for none.
        prefix: String,
    },
    /// `gs://bucket[/prefix]`.
    Gcs {
        /// The bucket name.
        bucket: String,
        /// The object name prefix without leading or trailing `/`; empty for none.
        prefix: String,
    },
    /// `file:///absolute/dir` or `file:relative/dir` (relative to the working directory).
    File {
        /// The directory, as written.
        path: PathBuf,
    },
}

impl BackendUrl {
    /// Parses `s3://…`, `gs://…` or `file:…`; the error text says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = bucket_and_prefix(rest, false)?;
            Ok(Self::S3 { bucket, prefix })
        } else if let Some(rest) = text.strip_prefix("gs://") {
            let (bucket, prefix) = bucket_and_prefix(rest, true)?;
            Ok(Self::Gcs { bucket, prefix })
        } else if let Some(rest) = text.strip_prefix("file:") {
            // file:///abs → /abs; file:rel → rel. file://host/… names a host, which we cannot reach.
            let path =
                match rest.strip_prefix("//") {
                    Some(absolute) if absolute.starts_with('/') => absolute,
                    Some(_) => return Err(
                        "file URLs take no host: write file:///absolute/path or file:relative/path"
                            .to_owned(),
                    ),
                    None => rest,
                };
            if path.is_empty() {
                return Err("the file URL has no path".to_owned());
            }
            Ok(Self::File {
                path: PathBuf::from(path),
            })
        } else {
            Err("expected a URL starting with s3://, gs:// or file:".to_owned())
        }
    }
}

impl fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, bucket, prefix) = match self {
            Self::S3 { bucket, prefix } => ("s3", bucket, prefix),
            Self::Gcs { bucket, prefix } => ("gs", bucket, prefix),
            Self::File { path } => return write!(f, "file:{}", path.display()),
        };
        if prefix.is_empty() {
            write!(f, "{scheme}://{bucket}")
        } else {
            write!(f, "{scheme}://{bucket}/{prefix}")
        }
    }
}

fn bucket_and_prefix(rest: &str, allow_underscore: bool) -> Result<(String, String), String> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_character = |character: char| {
        character.is_ascii_lowercase()
            || character.is_ascii_digit()
            || character == '-'
            || character == '.'
            || (allow_underscore && character == '_')
    };
    if !(3..=63).contains(&bucket.len())
        || !bucket.chars().all(valid_character)
        || !bucket.starts_with(|first: char| first.is_ascii_alphanumeric())
        || !bucket.ends_with(|last: char| last.is_ascii_alphanumeric())
    {
        return Err(format!(
            "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' or '.')"
        ));
    }
    let prefix = prefix.trim_end_matches('/');
    if prefix
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
        && !prefix.is_empty()
    {
        return Err(format!(
            "the prefix {prefix:?} has an empty, '.' or '..' segment"
        ));
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

/// How to reach a backend, besides its URL. Never holds a credential.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendOptions {
    /// The S3 region (`us-east-2`); when absent the AWS chain decides (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Another server speaking the same API (an S3-compatible store, the GCS emulator),
    /// `http://` or `https://`. For GCS it also turns OAuth off: emulators take no credentials.
    pub endpoint: Option<String>,
    /// S3 only: address buckets as `endpoint/bucket/key` rather than `bucket.endpoint/key`.
    pub path_style: bool,
}

/// One mirror backend from the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Unique in the catalogue.
    pub name: String,
    /// Where the blobs are.
    pub url: BackendUrl,
    /// How to reach it.
    pub options: BackendOptions,
    /// What selectors match on (`cloud: aws`).
    pub labels: BTreeMap<String, String>,
}

/// All backends of a catalogue file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue {
    /// The backends, names unique.
    pub backends: Vec<Backend>,
}

impl Catalogue {
    /// Reads and decodes a catalogue file.
    pub fn load(path: &Path) -> Result<Self, ObjectError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ObjectError::io(path.display().to_string(), error))?;
        Self::from_str(&text, &path.display().to_string())
    }

    /// Decodes catalogue text; `file_name` prefixes positions in errors.
    #[allow(clippy::should_implement_trait)] // It needs the file name for its messages.
    pub fn from_str(text: &str, file_name: &str) -> Result<Self, ObjectError> {
        let mut decoder = Decoder {
            file_name,
            problems: Vec::new(),
        };
        let root = match hoist_yaml::parse(text) {
            Ok(root) => root,
            Err(error) => {
                decoder.problem_at(error.line, error.column, "", &error.message);
                return Err(decoder
                    .into_error()
                    .unwrap_or_else(|| unreachable_error(file_name)));
            }
        };
        let backends = match &root {
            None => {
                decoder.problem_at(1, 1, "backends", "the file is empty; expected backends:");
                Vec::new()
            }
            Some(root) => decoder.catalogue(root),
        };
        match decoder.into_error() {
            Some(error) => Err(error),
            None => Ok(Self { backends }),
        }
    }

    /// The backends `selector` matches, in catalogue order.
    pub fn select(&self, selector: &Selector) -> Vec<&Backend> {
        self.backends
            .iter()
            .filter(|backend| selector.matches(&backend.labels))
            .collect()
    }

    /// The backend called `name`.
    pub fn get(&self, name: &str) -> Option<&Backend> {
        self.backends.iter().find(|backend| backend.name == name)
    }
}

fn unreachable_error(file_name: &str) -> ObjectError {
    ObjectError::config(file_name, "the catalogue is invalid")
}

/// Collects problems while walking the tree.
struct Decoder<'a> {
    file_name: &'a str,
    /// (line, column, key, message)
    problems: Vec<(u32, u32, String, String)>,
}

impl Decoder<'_> {
    fn problem(&mut self, node: &Node, key: &str, message: impl Into<String>) {
        self.problem_at(node.line, node.column, key, &message.into());
    }

    fn problem_at(&mut self, line: u32, column: u32, key: &str, message: &str) {
        self.problems
            .push((line, column, key.to_owned(), message.to_owned()));
    }

    /// One error: the first problem's position is the subject; the others follow on their own lines.
    fn into_error(self) -> Option<ObjectError> {
        let file_name = self.file_name;
        let describe = |(_, _, key, message): &(u32, u32, String, String)| {
            if key.is_empty() {
                message.clone()
            } else {
                format!("{key}: {message}")
            }
        };
        let (first, rest) = self.problems.split_first()?;
        let mut message = describe(first);
        for problem in rest {
            message.push_str(&format!(
                "\n{file_name}:{}:{}: {}",
                problem.0,
                problem.1,
                describe(problem)
            ));
        }
        Some(ObjectError::config(
            format!("{file_name}:{}:{}", first.0, first.1),
            message,
        ))
    }

    /// The pairs of a map whose keys are all in `allowed`, each once; problems for the rest.
    fn fields<'n, const N: usize>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: [&str; N],
    ) -> Option<[Option<&'n Node>; N]> {
        hoist_yaml::fields(node, allowed, |error| match error {
            FieldError::NotMap => self.problem(
                node,
                path,
                format!(
                    "expected a map with keys {}, found {}",
                    allowed.join(", "),
                    node.describe()
                ),
            ),
            FieldError::KeyNotString(key) => self.problem(
                key,
                path,
                format!("expected a string key, found {}", key.describe()),
            ),
            FieldError::Unknown(key, name) => self.problem(
                key,
                &join_key(path, name),
                hoist_yaml::unknown_key_message(&allowed),
            ),
            FieldError::Duplicate(key, name, first_line) => self.problem(
                key,
                &join_key(path, name),
                hoist_yaml::duplicate_key_message(first_line),
            ),
        })
    }

    fn string<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> Option<&'n str> {
        match (&node.kind, node.as_str()) {
            (_, Some("")) => self.problem(
                node,
                path,
                format!("expected {what}, found an empty string"),
            ),
            (NodeKind::Scalar { .. }, Some(text)) => return Some(text),
            _ => self.problem(
                node,
                path,
                format!("expected {what} (a string), found {}", node.describe()),
            ),
        }
        None
    }

    fn catalogue(&mut self, root: &Node) -> Vec<Backend> {
        let Some([backends]) = self.fields(root, "", ["backends"]) else {
            return Vec::new();
        };
        let Some(backends) = backends else {
            self.problem(root, "backends", "missing required key \"backends\"");
            return Vec::new();
        };
        let NodeKind::Sequence(items) = &backends.kind else {
            self.problem(
                backends,
                "backends",
                format!(
                    "expected a list of backends (- name: …), found {}",
                    backends.describe()
                ),
            );
            return Vec::new();
        };
        let mut decoded: Vec<(Backend, u32)> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let path = format!("backends[{index}]");
            let Some(backend) = self.backend(item, &path) else {
                continue;
            };
            if let Some((_, first_line)) =
                decoded.iter().find(|(other, _)| other.name == backend.name)
            {
                self.problem(
                    item,
                    &join_key(&path, "name"),
                    format!(
                        "backend {:?} is named twice, first at line {first_line}",
                        backend.name
                    ),
                );
                continue;
            }
            decoded.push((backend, item.line));
        }
        decoded.into_iter().map(|(backend, _)| backend).collect()
    }

    fn backend(&mut self, item: &Node, path: &str) -> Option<Backend> {
        let [name, url, region, endpoint, path_style, labels] = self.fields(
            item,
            path,
            ["name", "url", "region", "endpoint", "pathStyle", "labels"],
        )?;
        let problems_before = self.problems.len();
        let name = self.required(item, name, path, "name").and_then(|node| {
            let text = self.string(node, &join_key(path, "name"), "a backend name")?;
            if !is_label_key(text) || text.contains('/') {
                self.problem(
                    node,
                    &join_key(path, "name"),
                    "expected letters, digits, '.', '_' or '-'",
                );
                return None;
            }
            Some(text.to_owned())
        });
        let url = self.required(item, url, path, "url").and_then(|node| {
            let text = self.string(node, &join_key(path, "url"), "a URL")?;
            BackendUrl::parse(text)
                .map_err(|message| self.problem(node, &join_key(path, "url"), message))
                .ok()
        });
        let region =
            region.and_then(|node| self.string(node, &join_key(path, "region"), "a region"));
        let endpoint = endpoint.and_then(|node| {
            let text = self.string(node, &join_key(path, "endpoint"), "a URL")?;
            match url::Url::parse(text) {
                Ok(parsed)
                    if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() =>
                {
                    Some(text.trim_end_matches('/').to_owned())
                }
                _ => {
                    self.problem(
                        node,
                        &join_key(path, "endpoint"),
                        "expected an http:// or https:// URL",
                    );
                    None
                }
            }
        });
        let path_style = path_style.and_then(|node| match &node.kind {
            NodeKind::Scalar { text, plain: true } if text == "true" => Some((true, node)),
            NodeKind::Scalar { text, plain: true } if text == "false" => Some((false, node)),
            _ => {
                self.problem(
                    node,
                    &join_key(path, "pathStyle"),
                    format!("expected true or false, found {}", node.describe()),
                );
                None
            }
        });
        let labels = labels.map_or_else(BTreeMap::new, |node| {
            self.labels(node, &join_key(path, "labels"))
        });
        let url = url?;
        // Options that do not apply to the scheme are mistakes, not no-ops.
        let scheme_problem =
            |key: &str| format!("{key} does not apply to {url} (only to s3:// URLs)");
        if !matches!(url, BackendUrl::S3 { .. }) {
            if let Some(node) = region.and(item_key(item, "region")) {
                self.problem(node, &join_key(path, "region"), scheme_problem("region"));
            }
            if let Some((_, node)) = path_style {
                self.problem(
                    node,
                    &join_key(path, "pathStyle"),
                    scheme_problem("pathStyle"),
                );
            }
        }
        if matches!(url, BackendUrl::File { .. })
            && let Some(node) = endpoint.as_ref().and(item_key(item, "endpoint"))
        {
            self.problem(
                node,
                &join_key(path, "endpoint"),
                "endpoint does not apply to file: URLs",
            );
        }
        if self.problems.len() > problems_before {
            return None;
        }
        Some(Backend {
            name: name?,
            url,
            options: BackendOptions {
                region: region.map(str::to_owned),
                endpoint,
                path_style: path_style.is_some_and(|(value, _)| value),
            },
            labels,
        })
    }

    fn required<'n>(
        &mut self,
        item: &Node,
        value: Option<&'n Node>,
        path: &str,
        key: &str,
    ) -> Option<&'n Node> {
        if value.is_none() {
            self.problem(
                item,
                &join_key(path, key),
                format!("missing required key {key:?}"),
            );
        }
        value
    }

    fn labels(&mut self, node: &Node, path: &str) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        let NodeKind::Mapping(pairs) = &node.kind else {
            self.problem(
                node,
                path,
                format!("expected a map of labels, found {}", node.describe()),
            );
            return labels;
        };
        for (key, value) in pairs {
            let Some(name) = key.as_str().filter(|name| is_label_key(name)) else {
                self.problem(
                    key,
                    path,
                    "expected a label key (letters, digits, '.', '_', '-', '/')",
                );
                continue;
            };
            let key_path = join_key(path, name);
            let text = match (&value.kind, value.as_str()) {
                (NodeKind::Scalar { .. }, Some(text)) if is_label_value(text) => text,
                _ => {
                    self.problem(
                        value,
                        &key_path,
                        "expected a label value (letters, digits, '.', '_', '-')",
                    );
                    continue;
                }
            };
            if labels.insert(name.to_owned(), text.to_owned()).is_some() {
                self.problem(key, &key_path, "duplicate label");
            }
        }
        labels
    }
}

/// The key node `key` of a map, for messages about it.
fn item_key<'n>(item: &'n Node, key: &str) -> Option<&'n Node> {
    match &item.kind {
        NodeKind::Mapping(pairs) => pairs
            .iter()
            .find(|(candidate, _)| candidate.as_str() == Some(key))
            .map(|(candidate, _)| candidate),
        _ => None,
    }
}
