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

/// A runtime for the commands that talk to registries.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
