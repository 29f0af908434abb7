//! [`Selector`]: picks backends by their labels, like `kubectl get -l`.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::ObjectError;

/// A label selector: requirements separated by commas, all of which must hold.
///
/// `key=value` and `key==value` (equal), `key!=value` (not equal, which a backend without the
/// label satisfies, as in Kubernetes), `key` (has the label) and `!key` (lacks it). The empty
/// selector selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

impl Selector {
    /// Selects every backend.
    pub fn all() -> Self {
        Self::default()
    }

    /// Parses `cloud=aws,region!=us-west-1`. Whitespace around keys and values is ignored.
    pub fn parse(text: &str) -> Result<Self, ObjectError> {
        let subject = || format!("selector {text:?}");
        let mut requirements = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self { requirements });
        }
        for part in text.split(',') {
            let part = part.trim();
            let requirement = if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(label_key(key, &subject)?, label_value(value, &subject)?)
            } else if let Some((key, value)) =
                part.split_once("==").or_else(|| part.split_once('='))
            {
                Requirement::Equals(label_key(key, &subject)?, label_value(value, &subject)?)
            } else if let Some(key) = part.strip_prefix('!') {
                Requirement::Absent(label_key(key, &subject)?)
            } else {
                Requirement::Exists(label_key(part, &subject)?)
            };
            requirements.push(requirement);
        }
        Ok(Self { requirements })
    }

    /// Whether labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|requirement| match requirement {
                Requirement::Equals(key, value) => labels.get(key) == Some(value),
                Requirement::NotEquals(key, value) => labels.get(key) != Some(value),
                Requirement::Exists(key) => labels.contains_key(key),
                Requirement::Absent(key) => !labels.contains_key(key),
            })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|requirement| match requirement {
                Requirement::Equals(key, value) => format!("{key}={value}"),
                Requirement::NotEquals(key, value) => format!("{key}!={value}"),
                Requirement::Exists(key) => key.clone(),
                Requirement::Absent(key) => format!("!{key}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Whether `text` can be a label key: letters, digits, `.`, `_`, `-`, `/`, starting alphanumeric.
pub(crate) fn is_label_key(text: &str) -> bool {
    text.starts_with(|first: char| first.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "._-/".contains(character))
}

/// Whether `text` can be a label value: like a key but may be empty and has no `/`.
pub(crate) fn is_label_value(text: &str) -> bool {
    text.chars()
        .all(|character| character.is_ascii_alphanumeric() || "._-".contains(character))
}

fn label_key(text: &str, subject: &impl Fn() -> String) -> Result<String, ObjectError> {
    let key = text.trim();
    if is_label_key(key) {
        Ok(key.to_owned())
    } else {
        Err(ObjectError::config(
            subject(),
            format!("{key:?} is not a label key (letters, digits, '.', '_', '-', '/')"),
        ))
    }
}

fn label_value(text: &str, subject: &impl Fn() -> String) -> Result<String, ObjectError> {
    let value = text.trim();
    if is_label_value(value) {
        Ok(value.to_owned())
    } else {
        Err(ObjectError::config(
            subject(),
            format!("{value:?} is not a label value (letters, digits, '.', '_', '-')"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn matches_like_kubectl() {
        let aws_east = labels(&[("cloud", "aws"), ("region", "us-east-2")]);
        let aws_west = labels(&[("cloud", "aws"), ("region", "us-west-1")]);
        let local = labels(&[("cloud", "none")]);
        let selector = Selector::parse("cloud=aws, region!=us-west-1").unwrap();
        assert!(selector.matches(&aws_east));
        assert!(!selector.matches(&aws_west));
        assert!(!selector.matches(&local));
        assert!(Selector::parse("cloud==none").unwrap().matches(&local));
        assert!(
            Selector::parse("region!=us-west-1")
                .unwrap()
                .matches(&local)
        );
        assert!(Selector::parse("region").unwrap().matches(&aws_west));
        assert!(!Selector::parse("region").unwrap().matches(&local));
        assert!(Selector::parse("!region").unwrap().matches(&local));
        assert!(Selector::parse("").unwrap().matches(&local));
        assert_eq!(Selector::parse(" ").unwrap(), Selector::all());
    }

    #[test]
    fn rejects_malformed_selectors() {
        for text in ["cloud=aws,", "=aws", "cloud=a b", "cloud=aws=x", "!"] {
            let error = Selector::parse(text).unwrap_err();
            assert!(error.to_string().contains(&format!("{text:?}")), "{error}");
        }
    }

    #[test]
    fn displays_canonically() {
        let selector = Selector::parse("cloud == aws , region!=x,!gone,has").unwrap();
        assert_eq!(selector.to_string(), "cloud=aws,region!=x,!gone,has");
    }
}
