//! Integration tests of the kit against real servers on 127.0.0.1.

mod double;
mod images;
mod proxy;
mod servers;

use hoist_testkit::{Endpoint, RegistryOptions, RegistryServer};

/// Starts a plain registry (panicking with its log if it does not come up).
pub fn registry() -> RegistryServer {
    RegistryServer::start(RegistryOptions::plain()).expect("start docker-registry")
}

/// GET `/v2/` and return the status.
pub async fn ping(client: &reqwest::Client, endpoint: &Endpoint) -> reqwest::Result<u16> {
    let mut request = client.get(format!("{}/v2/", endpoint.base_url()));
    if let Some(credentials) = endpoint.credentials() {
        request = request.basic_auth(&credentials.username, Some(&credentials.password));
    }
    Ok(request.send().await?.status().as_u16())
}
