//! A throwaway CA and a server certificate for 127.0.0.1 and localhost.
//!
//! The leaf is signed by a separate CA because rustls (webpki) rejects a self-signed CA
//! certificate presented as an end-entity certificate (`CaUsedAsEndEntity`).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::{Error, Result};

/// PEM texts of a test CA and of a server certificate (with its key) signed by it.
pub(crate) struct TestCertificates {
    pub(crate) ca_pem: String,
    pub(crate) server_pem: String,
    pub(crate) server_key_pem: String,
}

fn failed(what: &'static str) -> impl FnOnce(rcgen::Error) -> Error {
    move |error| Error::Credentials {
        what,
        reason: error.to_string(),
    }
}

/// Makes a fresh CA and a server certificate valid for `127.0.0.1` and `localhost`.
pub(crate) fn make_certificates() -> Result<TestCertificates> {
    let ca_key = KeyPair::generate().map_err(failed("the test CA key"))?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(failed("the test CA"))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hoist test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_certificate = ca_params
        .self_signed(&ca_key)
        .map_err(failed("the test CA"))?;

    let server_key = KeyPair::generate().map_err(failed("the server key"))?;
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(failed("the server certificate"))?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    server_params.is_ca = IsCa::NoCa;
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let server_certificate = server_params
        .signed_by(&server_key, &issuer)
        .map_err(failed("the server certificate"))?;

    Ok(TestCertificates {
        ca_pem: ca_certificate.pem(),
        server_pem: server_certificate.pem(),
        server_key_pem: server_key.serialize_pem(),
    })
}
