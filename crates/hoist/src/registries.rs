//! Registry access flags to a [`StoreConfig`].

use std::collections::HashMap;

use anyhow::Context as _;
use hoist_promote::StoreConfig;
use hoist_registry::{RegistryCredentials, RegistryOptions, Timeouts};

use crate::cli::{NetworkArgs, RegistryArgs};

/// Environment variables holding the credentials for `--credentials-for` hosts.
const USERNAME_VARIABLE: &str = "HOIST_REGISTRY_USERNAME";
const PASSWORD_VARIABLE: &str = "HOIST_REGISTRY_PASSWORD";

/// The store configuration the flags ask for. Fails when `--credentials-for` is given without the
/// credentials in the environment.
pub fn config(args: &RegistryArgs) -> anyhow::Result<StoreConfig> {
    let mut credentials = HashMap::new();
    if !args.credentials_for.is_empty() {
        let username = std::env::var(USERNAME_VARIABLE)
            .with_context(|| format!("--credentials-for needs {USERNAME_VARIABLE}"))?;
        let password = std::env::var(PASSWORD_VARIABLE)
            .with_context(|| format!("--credentials-for needs {PASSWORD_VARIABLE}"))?;
        for host in &args.credentials_for {
            credentials.insert(
                host.clone(),
                RegistryCredentials::new(username.clone(), password.clone()),
            );
        }
    }
    Ok(StoreConfig {
        insecure_hosts: args.insecure_registries.iter().cloned().collect(),
        ca_files: args.ca_files.clone(),
        docker_config: args.docker_config.clone(),
        credentials,
        base: RegistryOptions {
            timeouts: Timeouts {
                connect: args.network.connect_timeout,
                idle: args.network.idle_timeout,
            },
            ..RegistryOptions::default()
        },
        max_requests_per_second: args.network.max_rps.iter().cloned().collect(),
        endpoints: args
            .registry_endpoints
            .iter()
            .map(|text| {
                parse_endpoint(text)
                    .map_err(|error| anyhow::anyhow!("--registry-endpoint: {error}"))
            })
            .collect::<anyhow::Result<_>>()?,
    })
}

/// How blob mirrors (S3, GCS) are opened: the same connect and idle timeouts as registries.
pub fn mirror_options(args: &NetworkArgs) -> hoist_object::OpenOptions {
    hoist_object::OpenOptions {
        timeouts: hoist_object::Timeouts {
            connect: args.connect_timeout,
            idle: args.idle_timeout,
        },
        ..hoist_object::OpenOptions::default()
    }
}

/// `HOST=URL` of `--registry-endpoint`: a bare registry host, and `http(s)://ADDRESS[:PORT]`.
pub fn parse_endpoint(text: &str) -> Result<(String, url::Url), String> {
    let (host, endpoint) = text
        .split_once('=')
        .ok_or_else(|| "expected HOST=URL".to_owned())?;
    let named = url::Url::parse(&format!("https://{host}/"))
        .ok()
        .filter(|url| url.path() == "/" && url.username().is_empty() && !host.contains('/'));
    if host.is_empty() || named.is_none() {
        return Err(format!("{host:?} is not a registry host (HOST[:PORT])"));
    }
    // The text is not echoed: it could hold a password.
    let url = url::Url::parse(endpoint)
        .map_err(|error| format!("the endpoint of {host} is not a URL: {error}"))?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !bare {
        return Err(format!(
            "the endpoint of {host} must be http(s)://ADDRESS[:PORT], nothing more"
        ));
    }
    Ok((host.to_owned(), url))
}

/// A runtime for the commands that talk to registries.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_endpoints() {
        let (host, url) = parse_endpoint("us-west1-docker.pkg.dev=http://127.0.0.1:5000").unwrap();
        assert_eq!(host, "us-west1-docker.pkg.dev");
        assert_eq!(url.as_str(), "http://127.0.0.1:5000/");
        assert!(parse_endpoint("localhost:5000=https://mirror.example").is_ok());
        for bad in [
            "no-equals-sign",
            "=http://127.0.0.1",
            "gcr.io/path=http://127.0.0.1",
            "gcr.io=127.0.0.1:5000",
            "gcr.io=http://127.0.0.1/prefix",
            "gcr.io=ftp://127.0.0.1",
            "gcr.io=http://user:hunter2@127.0.0.1",
            "gcr.io=http://[hunter2",
        ] {
            let error = parse_endpoint(bad).unwrap_err();
            assert!(!error.contains("hunter2"), "{bad}: {error}");
        }
    }
}
