//! The validated [`Digest`] type.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A content digest: `sha256:` followed by 64 lowercase hexadecimal digits.
///
/// Only sha256 is accepted: it is the only algorithm the Kubernetes promoter manifests use, and the
/// one registries compute for content they did not get a digest for. The value is held as 32 raw
/// bytes, so a `Digest` is `Copy` and hashes fast.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// Why a string is not a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The `sha256:` algorithm prefix is missing (or another algorithm is named).
    #[error(
        "expected a digest of the form sha256:<64 lowercase hex digits>, got {0:?} (missing the \"sha256:\" prefix)"
    )]
    MissingPrefix(String),
    /// The hex part has the wrong length.
    #[error(
        "expected a digest of the form sha256:<64 lowercase hex digits>, got {value:?} ({len} hex digits)"
    )]
    BadLength {
        /// The offending value.
        value: String,
        /// How many characters follow `sha256:`.
        len: usize,
    },
    /// The hex part holds something other than `0-9a-f`.
    #[error(
        "expected a digest of the form sha256:<64 lowercase hex digits>, got {0:?} (not lowercase hex)"
    )]
    NotLowercaseHex(String),
}

impl Digest {
    /// The algorithm prefix, with its colon.
    pub const PREFIX: &'static str = "sha256:";

    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let Some(hex_part) = value.strip_prefix(Self::PREFIX) else {
            return Err(DigestError::MissingPrefix(value.to_owned()));
        };
        if hex_part.len() != 64 {
            return Err(DigestError::BadLength {
                value: value.to_owned(),
                len: hex_part.len(),
            });
        }
        if !hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::NotLowercaseHex(value.to_owned()));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes)
            .map_err(|_| DigestError::NotLowercaseHex(value.to_owned()))?;
        Ok(Self(bytes))
    }

    /// The digest of `content`.
    pub fn of(content: &[u8]) -> Self {
        Self(Sha256::digest(content).into())
    }

    /// Wraps a finished sha256 hash.
    pub fn from_sha256(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits, without the algorithm prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The cosign-style tag prefix for things attached to this digest: `sha256-<hex>`
    /// (as in `sha256-<hex>.sig`).
    pub fn tag_prefix(&self) -> String {
        format!("sha256-{}", self.hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::PREFIX)?;
        let mut buf = [0u8; 64];
        // Cannot fail: the buffer is exactly twice the input length.
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "sha256:46b237764fee52288a7ab075353c77d4e0de55e374c87474409091bd94e442af";

    #[test]
    fn round_trips() {
        let digest = Digest::parse(GOOD).unwrap();
        assert_eq!(digest.to_string(), GOOD);
        assert_eq!(
            serde_json::to_string(&digest).unwrap(),
            format!("\"{GOOD}\"")
        );
        assert_eq!(
            serde_json::from_str::<Digest>(&format!("\"{GOOD}\"")).unwrap(),
            digest
        );
    }

    #[test]
    fn rejects_bad_forms() {
        assert!(matches!(
            Digest::parse(&GOOD[7..]),
            Err(DigestError::MissingPrefix(_))
        ));
        assert!(matches!(
            Digest::parse(&GOOD[..70]),
            Err(DigestError::BadLength { len: 63, .. })
        ));
        assert!(matches!(
            Digest::parse(&GOOD.to_uppercase().replace("SHA256", "sha256")),
            Err(DigestError::NotLowercaseHex(_))
        ));
        assert!(matches!(
            Digest::parse("sha512:abc"),
            Err(DigestError::MissingPrefix(_))
        ));
    }

    #[test]
    fn hashes_content() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
