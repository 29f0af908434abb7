//! What a registry asks for in its `WWW-Authenticate` challenge, and the tokens it gave us.
//!
//! Registries answer a request that lacks credentials with 401 and a challenge: `Basic` (registry:2
//! with htpasswd) or `Bearer realm=...,service=...,scope=...`, the token flow of
//! <https://distribution.github.io/distribution/spec/auth/token/>. [`AuthState`] remembers which one
//! the host wants, so that after the first challenge every request carries the right header at once
//! (no probing `GET /v2/` before each request), and caches bearer tokens per scope until they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::HeaderValue;

use crate::credentials::RegistryCredentials;

/// The access a request needs, in the token service's words (`repository:NAME:pull,push`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    entries: Vec<String>,
}

impl Scope {
    /// Reading `repository`.
    pub(crate) fn pull(repository: &str) -> Self {
        Self {
            entries: vec![format!("repository:{repository}:pull")],
        }
    }

    /// Writing `repository` (pushing also needs pull: registries check a blob exists first).
    pub(crate) fn push(repository: &str) -> Self {
        Self {
            entries: vec![format!("repository:{repository}:pull,push")],
        }
    }

    /// Mounting a blob of `from` into `to`.
    pub(crate) fn mount(to: &str, from: &str) -> Self {
        Self {
            entries: vec![
                format!("repository:{to}:pull,push"),
                format!("repository:{from}:pull"),
            ],
        }
    }

    /// Adds a scope the server named in its challenge, if it is not there yet.
    fn with(mut self, extra: Option<&str>) -> Self {
        if let Some(extra) = extra
            && !self.entries.iter().any(|entry| entry == extra)
        {
            self.entries.push(extra.to_owned());
        }
        self
    }

    /// The `scope` query parameters of a token request.
    pub(crate) fn entries(&self) -> &[String] {
        &self.entries
    }

    fn key(&self) -> String {
        self.entries.join(" ")
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// Send the username and password with every request.
    Basic,
    /// Get a token from `realm` for `service` and send it.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `Basic realm="r"` or `Bearer realm="...",service="...",scope="..."`. `None` for
    /// other schemes. Parameter values may be quoted (with `\` escapes) and hold commas.
    pub(crate) fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Self::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let parameters = parse_parameters(rest);
        let get = |name: &str| {
            parameters
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        Some(Self::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    }
}

/// `key="value", key=value` pairs.
fn parse_parameters(text: &str) -> Vec<(String, String)> {
    let mut parameters = Vec::new();
    let mut characters = text.chars().peekable();
    loop {
        while characters
            .next_if(|c| c.is_whitespace() || *c == ',')
            .is_some()
        {}
        let key: String = std::iter::from_fn(|| characters.next_if(|c| *c != '=')).collect();
        if characters.next().is_none() {
            return parameters;
        }
        let mut value = String::new();
        if characters.next_if_eq(&'"').is_some() {
            while let Some(c) = characters.next() {
                match c {
                    '\\' => value.extend(characters.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| characters.next_if(|c| *c != ',')));
        }
        parameters.push((key.trim().to_owned(), value.trim().to_owned()));
    }
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
struct CachedToken {
    header: HeaderValue,
    valid_until: Instant,
}

/// Which scheme the host asked for, learned from its first challenge.
#[derive(Debug, Clone)]
enum Scheme {
    Unknown,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        extra_scope: Option<String>,
    },
}

/// The authentication state of one host: credentials, the scheme, bearer tokens by scope.
pub(crate) struct AuthState {
    credentials: Option<RegistryCredentials>,
    scheme: Mutex<Scheme>,
    tokens: Mutex<HashMap<String, CachedToken>>,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("credentials", &self.credentials)
            .field(
                "scheme",
                &*self
                    .scheme
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner()),
            )
            .finish_non_exhaustive()
    }
}

/// What a request should carry, decided before it is sent.
#[derive(Debug)]
pub(crate) enum Authorization {
    /// Send this header (or none).
    Header(Option<HeaderValue>),
    /// Get a token for this scope from `realm` first.
    NeedToken {
        realm: String,
        service: Option<String>,
        scope: Scope,
    },
}

impl AuthState {
    pub(crate) fn new(credentials: Option<RegistryCredentials>) -> Self {
        Self {
            credentials,
            scheme: Mutex::new(Scheme::Unknown),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn credentials(&self) -> Option<&RegistryCredentials> {
        self.credentials.as_ref()
    }

    /// The header for a request needing `scope`, or the token to fetch first.
    pub(crate) fn authorization(&self, scope: &Scope) -> Authorization {
        let scheme = self
            .scheme
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        match scheme {
            Scheme::Unknown => Authorization::Header(None),
            Scheme::Basic => Authorization::Header(self.credentials.as_ref().map(basic_header)),
            Scheme::Bearer {
                realm,
                service,
                extra_scope,
            } => {
                let scope = scope.clone().with(extra_scope.as_deref());
                let tokens = self
                    .tokens
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                match tokens.get(&scope.key()) {
                    Some(token) if token.valid_until > Instant::now() => {
                        Authorization::Header(Some(token.header.clone()))
                    }
                    _ => Authorization::NeedToken {
                        realm,
                        service,
                        scope,
                    },
                }
            }
        }
    }

    /// Takes note of a 401's challenge. A stale token for `scope` is dropped so that the next
    /// [`Self::authorization`] fetches a new one.
    pub(crate) fn learn(&self, challenge: &Challenge, scope: &Scope) {
        let mut scheme = self
            .scheme
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match challenge {
            Challenge::Basic => *scheme = Scheme::Basic,
            Challenge::Bearer {
                realm,
                service,
                scope: challenge_scope,
            } => {
                // The server's scope is kept only when it differs from ours, which happens when a
                // registry wants more (such as a catalog scope) than a request names.
                let extra_scope = challenge_scope
                    .clone()
                    .filter(|wanted| !scope.entries.contains(wanted));
                let key = scope.clone().with(extra_scope.as_deref()).key();
                *scheme = Scheme::Bearer {
                    realm: realm.clone(),
                    service: service.clone(),
                    extra_scope,
                };
                self.tokens
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .remove(&key);
            }
        }
    }

    /// Stores a token for `scope`, valid for `lifetime` less a margin for clock and transit.
    pub(crate) fn store_token(&self, scope: &Scope, header: HeaderValue, lifetime: Duration) {
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        let now = Instant::now();
        // A lifetime past what the clock can hold is as good as a day: a 401 renews it anyway.
        let valid_until = now
            .checked_add(lifetime - margin)
            .unwrap_or(now + Duration::from_secs(24 * 60 * 60));
        let token = CachedToken {
            header,
            valid_until,
        };
        self.tokens
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(scope.key(), token);
    }
}

/// `Authorization: Basic base64(user:password)`, marked sensitive so that it is never logged.
pub(crate) fn basic_header(credentials: &RegistryCredentials) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.password));
    sensitive(&format!("Basic {encoded}"))
}

/// `Authorization: Bearer TOKEN`.
pub(crate) fn bearer_header(token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .ok()
        .map(|mut value| {
            value.set_sensitive(true);
            value
        })
}

fn sensitive(text: &str) -> HeaderValue {
    // Base64 and the scheme name are always valid header bytes.
    let mut value = HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges_with_commas_in_quotes() {
        let challenge = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            challenge,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="r""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(Challenge::parse(r#"Bearer service="no realm""#), None);
        assert_eq!(
            Challenge::parse(r#"bearer realm=http://h/t , service="a\"b""#),
            Some(Challenge::Bearer {
                realm: "http://h/t".into(),
                service: Some("a\"b".into()),
                scope: None
            })
        );
    }

    #[test]
    fn caches_tokens_per_scope() {
        let state = AuthState::new(None);
        let pull = Scope::pull("a");
        assert!(matches!(
            state.authorization(&pull),
            Authorization::Header(None)
        ));
        let challenge =
            Challenge::parse(r#"Bearer realm="http://h/t",scope="repository:a:pull""#).unwrap();
        state.learn(&challenge, &pull);
        let Authorization::NeedToken { scope, .. } = state.authorization(&pull) else {
            panic!("token needed")
        };
        assert_eq!(
            scope, pull,
            "the challenge's scope equals ours and is not doubled"
        );
        state.store_token(&pull, bearer_header("t1").unwrap(), Duration::from_secs(60));
        assert!(matches!(
            state.authorization(&pull),
            Authorization::Header(Some(_))
        ));
        assert!(matches!(
            state.authorization(&Scope::push("a")),
            Authorization::NeedToken { .. }
        ));
        // A lifetime past what the clock can hold is kept, not a panic.
        state.store_token(&pull, bearer_header("t3").unwrap(), Duration::MAX);
        assert!(matches!(
            state.authorization(&pull),
            Authorization::Header(Some(_))
        ));
        // A token that has run out is not used.
        state.store_token(&pull, bearer_header("t2").unwrap(), Duration::ZERO);
        assert!(matches!(
            state.authorization(&pull),
            Authorization::NeedToken { .. }
        ));
    }

    #[test]
    fn basic_header_is_sensitive_and_encoded() {
        let header = basic_header(&RegistryCredentials::new("user", "pass"));
        assert!(header.is_sensitive());
        assert_eq!(header.to_str().unwrap(), "Basic dXNlcjpwYXNz");
    }
}
