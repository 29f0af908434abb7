//! Validated names: [`Tag`], [`RepositoryPath`], [`RegistryName`].

use std::fmt;
use std::sync::Arc;

/// Why a string is not a valid tag, repository path or registry name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not a tag: `^\w[\w.-]{0,127}$`.
    #[error("invalid tag {0:?}: expected a word character followed by up to 127 of [A-Za-z0-9_.-]")]
    Tag(String),
    /// Not an OCI repository path.
    #[error(
        "invalid image name {value:?}: {reason} (expected lowercase path components of [a-z0-9] \
         joined by '.', '_', '__' or '-', separated by '/')"
    )]
    Repository {
        /// The offending value.
        value: String,
        /// What exactly is wrong.
        reason: &'static str,
    },
    /// Not a registry name.
    #[error("invalid registry name {value:?}: {reason}")]
    Registry {
        /// The offending value.
        value: String,
        /// What exactly is wrong.
        reason: &'static str,
    },
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&value).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An image tag: `^\w[\w.-]{0,127}$` (the OCI distribution-spec grammar).
///
/// Cheap to clone (shared text).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Arc<str>);
string_newtype!(Tag);

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Tag {
    /// Parses and validates a tag.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let bytes = value.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= 128
            && is_word(bytes[0])
            && bytes[1..]
                .iter()
                .all(|&b| is_word(b) || b == b'.' || b == b'-');
        if valid {
            Ok(Self(value.into()))
        } else {
            Err(NameError::Tag(value.to_owned()))
        }
    }
}

/// A repository path inside a registry, such as `kube-apiserver` or `kubernetes/pause`.
///
/// Grammar (OCI distribution spec): components `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`.
/// So no uppercase, no empty component (no leading, trailing or double `/`), no `..`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryPath(Arc<str>);
string_newtype!(RepositoryPath);

/// Checks one path component against `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_component(component: &str) -> Result<(), &'static str> {
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return Err("empty path component (leading, trailing or doubled '/')");
    }
    if bytes.iter().any(u8::is_ascii_uppercase) {
        return Err("uppercase letters are not allowed");
    }
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return Err("a path component must start and end with [a-z0-9]");
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(&bytes[i]) {
            i += 1;
            continue;
        }
        // A run of separators: '.', '_', '__' or one or more '-'.
        let start = i;
        while i < bytes.len() && !alnum(&bytes[i]) {
            i += 1;
        }
        let run = &component[start..i];
        let ok = run == "." || run == "_" || run == "__" || run.bytes().all(|b| b == b'-');
        if !ok {
            return Err(if run.contains("..") {
                "'..' is not allowed"
            } else {
                "invalid separator or character (only '.', '_', '__' or '-' between [a-z0-9])"
            });
        }
    }
    Ok(())
}

impl RepositoryPath {
    /// Parses and validates a repository path.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let fail = |reason| NameError::Repository {
            value: value.to_owned(),
            reason,
        };
        if value.is_empty() {
            return Err(fail("the name is empty"));
        }
        if value.starts_with('/') {
            return Err(fail("a leading '/' is not allowed"));
        }
        if value.len() > 255 {
            return Err(fail("longer than 255 characters"));
        }
        for component in value.split('/') {
            check_component(component).map_err(fail)?;
        }
        Ok(Self(value.into()))
    }

    /// `self/child`.
    pub fn join(&self, child: &RepositoryPath) -> RepositoryPath {
        RepositoryPath(format!("{}/{}", self.0, child.0).into())
    }
}

/// Where images live: a registry host with an optional path prefix
/// (`gcr.io/k8s-staging-coredns`, `us-west1-docker.pkg.dev/k8s-artifacts-prod/images`,
/// `127.0.0.1:5000/prod`), a Docker Hub short name (`coredns/coredns`), or an OCI image layout on
/// disk (`oci:PATH`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistryName(Arc<str>);
string_newtype!(RegistryName);

/// The prefix that names an OCI image layout directory instead of a registry.
pub const OCI_LAYOUT_PREFIX: &str = "oci:";

fn check_host(host: &str) -> Result<(), &'static str> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the port after ':' must be a number");
    }
    if name.is_empty() {
        return Err("the host is empty");
    }
    for label in name.split('.') {
        let bytes = label.as_bytes();
        let ok = !bytes.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-';
        if !ok {
            return Err("host labels must be [A-Za-z0-9-], not starting or ending with '-'");
        }
    }
    Ok(())
}

impl RegistryName {
    /// Parses and validates a registry name.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let fail = |reason| NameError::Registry {
            value: value.to_owned(),
            reason,
        };
        if value.is_empty() {
            return Err(fail("the name is empty"));
        }
        if let Some(path) = value.strip_prefix(OCI_LAYOUT_PREFIX) {
            if path.is_empty() {
                return Err(fail("'oci:' must be followed by a directory path"));
            }
            return Ok(Self(value.into()));
        }
        if value.contains("://") {
            return Err(fail(
                "a registry name has no scheme (write gcr.io/foo, not https://gcr.io/foo)",
            ));
        }
        if value.ends_with('/') {
            return Err(fail("a trailing '/' is not allowed"));
        }
        let (first, rest) = match value.split_once('/') {
            Some((first, rest)) => (first, Some(rest)),
            None => (value, None),
        };
        if Self::looks_like_host(first) {
            check_host(first).map_err(fail)?;
            if let Some(rest) = rest {
                for component in rest.split('/') {
                    check_component(component).map_err(fail)?;
                }
            }
        } else {
            // A Docker Hub short form such as `coredns/coredns`: all components are path.
            for component in value.split('/') {
                check_component(component).map_err(fail)?;
            }
        }
        Ok(Self(value.into()))
    }

    /// Docker reference rules: the first component is a host when it has a '.' or a ':' or is
    /// `localhost`; otherwise the name is on Docker Hub.
    fn looks_like_host(first: &str) -> bool {
        first.contains('.') || first.contains(':') || first == "localhost"
    }

    /// The directory of an OCI image layout, when this name is `oci:PATH`.
    pub fn oci_layout_path(&self) -> Option<&str> {
        self.0.strip_prefix(OCI_LAYOUT_PREFIX)
    }

    /// The registry host (with port), `docker.io` for Docker Hub short names, `None` for an OCI
    /// layout.
    pub fn host(&self) -> Option<&str> {
        if self.oci_layout_path().is_some() {
            return None;
        }
        let first = self.0.split('/').next().unwrap_or_default();
        Some(if Self::looks_like_host(first) {
            first
        } else {
            "docker.io"
        })
    }

    /// The path prefix inside the host (`k8s-artifacts-prod/images`), empty when none. Docker Hub
    /// short names give their whole text; an OCI layout gives "".
    pub fn path(&self) -> &str {
        if self.oci_layout_path().is_some() {
            return "";
        }
        match self.0.split_once('/') {
            Some((first, rest)) if Self::looks_like_host(first) => rest,
            None if Self::looks_like_host(&self.0) => "",
            _ => &self.0,
        }
    }

    /// The repository path of `image` inside this registry's host: `path/image`.
    pub fn repository(&self, image: &RepositoryPath) -> String {
        match self.path() {
            "" => image.as_str().to_owned(),
            prefix => format!("{prefix}/{image}"),
        }
    }

    /// Whether `other` is this name or lies below it (`a/b` contains `a/b/c`, not `a/bc`).
    pub fn contains(&self, other: &str) -> bool {
        other == &*self.0
            || (other.len() > self.0.len()
                && other.starts_with(&*self.0)
                && other.as_bytes()[self.0.len()] == b'/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        for good in ["v1.2.3", "latest", "_x", "sha256-abc.sig", &"a".repeat(128)] {
            assert!(Tag::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "a:b", &"a".repeat(129), "v1 2"] {
            assert!(Tag::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repositories() {
        for good in [
            "pause",
            "kubernetes/pause",
            "a.b_c__d---e/f0",
            "e2e-test-images/agnhost",
        ] {
            assert!(RepositoryPath::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/pause", "pause/", "a//b", "Pause", "a..b", "../x", "a___b", "-a", "a b",
        ] {
            assert!(RepositoryPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registries() {
        let name =
            RegistryName::parse("us-west1-docker.pkg.dev/k8s-artifacts-prod/images").unwrap();
        assert_eq!(name.host(), Some("us-west1-docker.pkg.dev"));
        assert_eq!(name.path(), "k8s-artifacts-prod/images");
        let image = RepositoryPath::parse("kubernetes/pause").unwrap();
        assert_eq!(
            name.repository(&image),
            "k8s-artifacts-prod/images/kubernetes/pause"
        );
        assert!(name.contains("us-west1-docker.pkg.dev/k8s-artifacts-prod/images/kubernetes"));
        assert!(!name.contains("us-west1-docker.pkg.dev/k8s-artifacts-prod/imagesx"));

        let hub = RegistryName::parse("coredns/coredns").unwrap();
        assert_eq!(hub.host(), Some("docker.io"));
        assert_eq!(hub.path(), "coredns/coredns");

        let local = RegistryName::parse("127.0.0.1:5000").unwrap();
        assert_eq!(local.host(), Some("127.0.0.1:5000"));
        assert_eq!(local.path(), "");

        let layout = RegistryName::parse("oci:./layouts/src").unwrap();
        assert_eq!(layout.oci_layout_path(), Some("./layouts/src"));
        assert_eq!(layout.host(), None);

        for bad in [
            "",
            "https://gcr.io/x",
            "gcr.io/x/",
            "gcr.io//x",
            "gcr.io/X",
            "-bad.io/x",
            "h.io:abc/x",
        ] {
            assert!(RegistryName::parse(bad).is_err(), "{bad}");
        }
    }
}

/// What names a manifest in a repository: a tag or a digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// `repo:tag`.
    Tag(Tag),
    /// `repo@digest`.
    Digest(crate::Digest),
}

impl Reference {
    /// Parses a digest when the text starts with `sha256:`, a tag otherwise.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        match crate::Digest::parse(value) {
            Ok(digest) => Ok(Self::Digest(digest)),
            Err(_) => Tag::parse(value).map(Self::Tag),
        }
    }

    /// The separator to put between a repository and this reference: `:` or `@`.
    pub fn separator(&self) -> char {
        match self {
            Self::Tag(_) => ':',
            Self::Digest(_) => '@',
        }
    }
}

impl fmt::Display for Reference {
    /// The bare tag or digest, as it goes into a `/v2/<name>/manifests/<reference>` URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(tag) => tag.fmt(f),
            Self::Digest(digest) => digest.fmt(f),
        }
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl From<Tag> for Reference {
    fn from(tag: Tag) -> Self {
        Self::Tag(tag)
    }
}

impl From<crate::Digest> for Reference {
    fn from(digest: crate::Digest) -> Self {
        Self::Digest(digest)
    }
}
