//! How to reach one registry: address, scheme, credentials and trusted CA.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A username and password for HTTP basic auth. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// One registry as a client sees it: `host` (`127.0.0.1:PORT`), whether it speaks TLS, optional
/// basic-auth credentials and, for TLS, the PEM of the CA that signed its certificate.
#[derive(Clone, Debug)]
pub struct Endpoint {
    host: String,
    tls: bool,
    credentials: Option<Credentials>,
    ca_pem: Option<Arc<str>>,
}

impl Endpoint {
    /// A plain-HTTP registry without auth.
    pub fn http(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            tls: false,
            credentials: None,
            ca_pem: None,
        }
    }

    /// An HTTPS registry whose certificate is signed by the CA in `ca_pem`.
    pub fn https(host: impl Into<String>, ca_pem: impl Into<Arc<str>>) -> Self {
        Self {
            host: host.into(),
            tls: true,
            credentials: None,
            ca_pem: Some(ca_pem.into()),
        }
    }

    /// The same endpoint, sending these credentials with every request.
    pub fn with_credentials(mut self, username: &str, password: &str) -> Self {
        self.credentials = Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        });
        self
    }

    /// The same endpoint without credentials.
    pub fn without_credentials(mut self) -> Self {
        self.credentials = None;
        self
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the registry speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The credentials sent with each request, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The PEM of the CA to trust, for TLS endpoints.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// `http://HOST` or `https://HOST`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// `BASE/v2/REPOSITORY/SUFFIX`.
    pub(crate) fn url(&self, repository: &str, suffix: &str) -> String {
        format!("{}/v2/{repository}/{suffix}", self.base_url())
    }

    /// A reqwest client that trusts this endpoint's CA (and only it) and never follows
    /// redirects, so tests see exactly what the registry answered.
    pub fn client(&self) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(pem) = &self.ca_pem {
            let certificate = reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|error| {
                Error::Credentials {
                    what: "a client trusting the test CA",
                    reason: error.to_string(),
                }
            })?;
            builder = builder.tls_certs_only([certificate]);
        }
        builder.build().map_err(|error| Error::Credentials {
            what: "an HTTP client",
            reason: error.to_string(),
        })
    }

    /// Adds basic auth to `request` when this endpoint has credentials.
    pub(crate) fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credentials {
            Some(credentials) => {
                request.basic_auth(&credentials.username, Some(&credentials.password))
            }
            None => request,
        }
    }
}
