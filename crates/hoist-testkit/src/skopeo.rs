//! Cross-checks with skopeo, an independent registry client.

use tokio::process::Command;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// `skopeo inspect --raw docker://HOST/REPOSITORY{:tag|@digest}`: the manifest bytes exactly as
/// skopeo received them. Plain-HTTP endpoints are reached with `--tls-verify=false`; TLS ones
/// are verified against their CA. Credentials, if any, go to skopeo but never into errors.
pub async fn skopeo_inspect_raw(
    endpoint: &Endpoint,
    repository: &str,
    reference: &str,
) -> Result<Vec<u8>> {
    let separator = if reference.starts_with("sha256:") {
        '@'
    } else {
        ':'
    };
    let image = format!(
        "docker://{}/{repository}{separator}{reference}",
        endpoint.host()
    );
    let mut command = Command::new("skopeo");
    command.args(["inspect", "--raw"]);
    // Kept alive until skopeo exits: holds the CA for --cert-dir.
    let mut certificate_dir = None;
    match endpoint.ca_pem() {
        Some(pem) if endpoint.is_tls() => {
            let directory =
                tempfile::tempdir().map_err(|source| Error::io(std::env::temp_dir(), source))?;
            let path = directory.path().join("ca.crt");
            std::fs::write(&path, pem).map_err(|source| Error::io(&path, source))?;
            command.arg("--cert-dir").arg(directory.path());
            certificate_dir = Some(directory);
        }
        _ => {
            command.arg("--tls-verify=false");
        }
    }
    if let Some(credentials) = endpoint.credentials() {
        command
            .arg("--creds")
            .arg(format!("{}:{}", credentials.username, credentials.password));
    }
    command.arg(&image);
    let output = command.output().await.map_err(|source| Error::Spawn {
        program: "skopeo".to_owned(),
        source,
    })?;
    drop(certificate_dir);
    if !output.status.success() {
        return Err(Error::Skopeo {
            command: format!("inspect --raw {image}"),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(output.stdout)
}
