//! The store behind a registry name: one shared [`RegistryStore`] per registry host (so requests
//! to a host share its connection pool, token cache and concurrency limit), one [`LayoutStore`]
//! per `oci:PATH` directory.

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
    /// `credentials` and `endpoint` are filled in per host.
    pub base: RegistryOptions,
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
            (Some(path), _) => format!("oci:{path}"),
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
            endpoint: self.config.endpoints.get(host).cloned(),
            ..self.config.base.clone()
        };
        RegistryStore::new(host, options)
    }
}
