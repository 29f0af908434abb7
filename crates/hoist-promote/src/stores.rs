//! The store behind a registry name: one shared [`RegistryStore`] per registry host (so requests
//! to a host share its connection pool, token cache and concurrency windows), one [`LayoutStore`]
//! per `oci:PATH` directory, however the directory is spelled (`oci:out/prod` and
//! `oci:./out/prod` are one store, with one lock per `index.json`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use hoist_layout::LayoutStore;
use hoist_oci::{RegistryName, RepositoryPath};
use hoist_registry::{RegistryCredentials, RegistryOptions, RegistryStore};
use hoist_store::{Sink, StoreError};

/// How registries are reached.
#[derive(Clone, Default)]
pub struct StoreConfig {
    /// Hosts (`HOST[:PORT]`) spoken to over plain HTTP; every other host gets verified TLS.
    pub insecure_hosts: BTreeSet<String>,
    /// Extra CA certificates (PEM) to trust.
    pub ca_files: Vec<PathBuf>,
    /// A Docker `config.json` to read credentials from instead of the default one
    /// (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
    /// Credentials given explicitly, by host; they win over the Docker configuration.
    pub credentials: HashMap<String, RegistryCredentials>,
    /// Options every registry starts from (timeouts, retries, limits); `insecure`, `ca_files`,
    /// `credentials`, `endpoint` and `max_requests_per_second` are filled in per host.
    pub base: RegistryOptions,
    /// Requests per second allowed to a host (`--max-rps HOST=N`); hosts not named are uncapped.
    pub max_requests_per_second: HashMap<String, f64>,
    /// Where some registry hosts are really reached (`HOST` -> `http(s)://HOST[:PORT]`): a
    /// mirror, a port-forward, a local double. The store keeps the host's name (credentials,
    /// GCR behaviour); requests go to the endpoint, over TLS unless its scheme is `http`.
    pub endpoints: BTreeMap<String, url::Url>,
}

impl fmt::Debug for StoreConfig {
    // Credentials stay out of debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("insecure_hosts", &self.insecure_hosts)
            .field("ca_files", &self.ca_files)
            .field("docker_config", &self.docker_config)
            .field("endpoints", &self.endpoints)
            .field(
                "credentials_for",
                &self.credentials.keys().collect::<Vec<_>>(),
            )
            .field("max_requests_per_second", &self.max_requests_per_second)
            .finish_non_exhaustive()
    }
}

/// A store and the repository of one image inside it.
#[derive(Clone)]
pub struct Located {
    /// The store.
    pub store: Arc<dyn Sink>,
    /// The repository path inside the store.
    pub repository: String,
}

impl fmt::Debug for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.store.describe(), self.repository)
    }
}

/// Opens stores on demand and keeps them for the run.
#[derive(Debug)]
pub struct Stores {
    config: StoreConfig,
    opened: tokio::sync::Mutex<HashMap<String, Arc<dyn Sink>>>,
}

impl Stores {
    /// Stores reached as `config` says. Opens nothing yet.
    pub fn new(config: StoreConfig) -> Self {
        Self {
            config,
            opened: tokio::sync::Mutex::default(),
        }
    }

    /// The store holding `registry` and the repository of `image` inside it.
    pub async fn locate(
        &self,
        registry: &RegistryName,
        image: &RepositoryPath,
    ) -> Result<Located, StoreError> {
        Ok(Located {
            store: self.open(registry).await?,
            repository: registry.repository(image),
        })
    }

    /// The store holding `registry`: its host's registry, or its layout directory.
    pub async fn open(&self, registry: &RegistryName) -> Result<Arc<dyn Sink>, StoreError> {
        let key = match (registry.oci_layout_path(), registry.host()) {
            (Some(path), _) => format!(
                "oci:{}",
                hoist_layout::canonical_directory(std::path::Path::new(path)).display()
            ),
            (None, Some(host)) => host.to_owned(),
            (None, None) => unreachable!("a registry name is a layout or has a host"),
        };
        let mut opened = self.opened.lock().await;
        if let Some(store) = opened.get(&key) {
            return Ok(store.clone());
        }
        let store: Arc<dyn Sink> = match (registry.oci_layout_path(), registry.host()) {
            (Some(path), _) => Arc::new(LayoutStore::open(std::path::Path::new(path))),
            (_, Some(host)) => Arc::new(self.open_registry(host).await?),
            (None, None) => unreachable!("a registry name is a layout or has a host"),
        };
        opened.insert(key, store.clone());
        Ok(store)
    }

    async fn open_registry(&self, host: &str) -> Result<RegistryStore, StoreError> {
        let credentials = match self.config.credentials.get(host) {
            Some(credentials) => Some(credentials.clone()),
            None => match &self.config.docker_config {
                Some(path) => RegistryCredentials::from_docker_config_file(path, host).await?,
                None => RegistryCredentials::from_docker_config(host).await?,
            },
        };
        let options = RegistryOptions {
            insecure: self.config.insecure_hosts.contains(host),
            ca_files: self.config.ca_files.clone(),
            credentials,
            max_requests_per_second: self
                .config
                .max_requests_per_second
                .get(host)
                .copied()
                .or(self.config.base.max_requests_per_second),
            endpoint: self.config.endpoints.get(host).cloned(),
            ..self.config.base.clone()
        };
        RegistryStore::new(host, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spellings_of_one_layout_directory_share_one_store() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(directory.path().join("out")).unwrap();
        let base = directory.path().display();
        let stores = Stores::new(StoreConfig::default());
        let plain = RegistryName::parse(&format!("oci:{base}/out/prod")).unwrap();
        let dotted = RegistryName::parse(&format!("oci:{base}/./out/prod")).unwrap();
        let other = RegistryName::parse(&format!("oci:{base}/out/staging")).unwrap();
        let first = stores.open(&plain).await.unwrap();
        assert!(Arc::ptr_eq(&first, &stores.open(&dotted).await.unwrap()));
        assert!(!Arc::ptr_eq(&first, &stores.open(&other).await.unwrap()));
    }
}
