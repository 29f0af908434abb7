//! Each registry variant starts and answers `/v2/` as it should.

use hoist_testkit::{ImageBuilder, RegistryOptions, RegistryServer, blob_exists, push};

use crate::{ping, registry};

#[tokio::test]
async fn plain_registry_answers_and_counts_requests() {
    let server = registry();
    assert!(server.host().starts_with("127.0.0.1:"));
    let endpoint = server.endpoint();
    assert!(!endpoint.is_tls());
    let client = server.client().unwrap();
    assert_eq!(ping(&client, &endpoint).await.unwrap(), 200);
    assert_eq!(ping(&client, &endpoint).await.unwrap(), 200);

    let log = server.access_log();
    assert_eq!(log.len(), 2, "two requests in {log:?}");
    assert!(
        log.iter()
            .all(|entry| entry.method == "GET" && entry.path == "/v2/")
    );
    assert_eq!(log[0].status, 200);
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn auth_registry_wants_credentials() {
    let server = RegistryServer::start(RegistryOptions::plain().with_basic_auth("hoist", "s3cret"))
        .expect("start docker-registry with htpasswd");
    let endpoint = server.endpoint();
    let client = server.client().unwrap();

    let anonymous = client
        .get(format!("{}/v2/", endpoint.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let challenge = anonymous.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic"), "challenge {challenge}");

    assert_eq!(ping(&client, &endpoint).await.unwrap(), 200);
    let wrong = endpoint.clone().with_credentials("hoist", "wrong");
    assert_eq!(ping(&client, &wrong).await.unwrap(), 401);
    assert!(
        !format!("{endpoint:?}").contains("s3cret"),
        "Debug must not show the password"
    );
}

#[tokio::test]
async fn tls_registry_is_trusted_only_with_its_ca() {
    let server =
        RegistryServer::start(RegistryOptions::plain().with_tls()).expect("start TLS registry");
    let endpoint = server.endpoint();
    assert!(endpoint.base_url().starts_with("https://127.0.0.1:"));
    let ca = std::fs::read_to_string(server.ca_path().unwrap()).unwrap();
    assert!(ca.contains("BEGIN CERTIFICATE"));

    assert_eq!(
        ping(&server.client().unwrap(), &endpoint).await.unwrap(),
        200
    );

    // A client that does not trust the test CA must refuse the server.
    let stranger = hoist_testkit::Endpoint::https(server.host(), registry_ca_of_another_server())
        .client()
        .unwrap();
    assert!(ping(&stranger, &endpoint).await.is_err());
}

fn registry_ca_of_another_server() -> String {
    let other = RegistryServer::start(RegistryOptions::plain().with_tls()).unwrap();
    std::fs::read_to_string(other.ca_path().unwrap()).unwrap()
}

#[tokio::test]
async fn restart_keeps_storage() {
    let mut server = registry();
    let client = server.client().unwrap();
    let image = ImageBuilder::new(11).layer(1000).build();
    push(&client, &server.endpoint(), "restart/me", &image, &["v1"])
        .await
        .unwrap();

    server.kill();
    assert!(!server.is_running());
    assert!(ping(&client, &server.endpoint()).await.is_err());

    server.restart().unwrap();
    assert!(server.is_running());
    let layer = image.layers[0].digest();
    assert!(
        blob_exists(&client, &server.endpoint(), "restart/me", layer)
            .await
            .unwrap()
    );
    hoist_testkit::validate_tag(&server.endpoint(), "restart/me", "v1", image.digest())
        .await
        .unwrap();
}

#[test]
fn a_server_that_exits_fails_with_its_log() {
    // `sh serve CONFIG` complains that it cannot open the script "serve", and exits.
    let error = RegistryServer::start(RegistryOptions::plain().with_program("sh")).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("it exited"), "{message}");
    assert!(
        message.contains("serve"),
        "the log is in the error: {message}"
    );
}
