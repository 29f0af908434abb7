//! [`GcsMirror`]: blobs in a Google Cloud Storage bucket, over the JSON API.
//!
//! # Why requests of our own, and not object_store's client
//!
//! `object_store` writes through GCS's XML API, which the fake-gcs-server emulator (the only GCS
//! we can test against) does not serve, and its multipart uploads cannot be made create-only.
//! The JSON API is small: a media upload for small blobs, a resumable upload for large ones
//! (<https://cloud.google.com/storage/docs/performing-resumable-uploads>), both with
//! `ifGenerationMatch=0` so an existing object is never replaced. `object_store` is still used
//! for what it is good at: application default credentials, turned into OAuth tokens.
//!
//! A media upload streams the blob with its last bytes held back until the caller's verification
//! ended; a resumable upload (above the multipart threshold) makes the object visible only with its
//! last chunk, which is sent only after the blob was read to its end and verified. The CRC32C GCS
//! reports for what it stored is compared with the CRC32C of what was sent. With an emulator
//! endpoint no token is sent.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hoist_oci::Digest;
use hoist_store::{ByteStream, StoreError, StoreErrorKind};
use object_store::gcp::{GcpCredentialProvider, GoogleCloudStorageBuilder};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::bucket::{Keyed, join_prefix};
use crate::catalogue::{Backend, BackendUrl};
use crate::error::{ObjectError, ObjectErrorKind};
use crate::network;
use crate::parts::{Guarded, PartReader};
use crate::{BlobMirror, OpenOptions, PutOutcome, UploadSettings, blob_key};

const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";
/// The variable Google's client libraries read to reach an emulator instead of GCS.
const EMULATOR_VARIABLE: &str = "STORAGE_EMULATOR_HOST";
/// Resumable upload chunks must be multiples of 256 KiB.
const CHUNK_GRANULE: u64 = 256 * 1024;
/// Object resources and error answers are small; a body past this is not one.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// A GCS bucket (and object name prefix) holding blobs.
#[derive(Debug, Clone)]
pub struct GcsMirror {
    http: reqwest::Client,
    endpoint: String,
    bucket: String,
    prefix: String,
    /// `None` for an emulator, which takes no credentials.
    credentials: Option<GcpCredentialProvider>,
    uploads: UploadSettings,
    /// No byte moved for this long fails a request or a body being read.
    idle: Duration,
}

/// The object resource fields we read.
#[derive(Debug, serde::Deserialize)]
struct ObjectResource {
    /// The size, a decimal string in the JSON API.
    size: String,
    /// The CRC32C of the content, base64 of its four big-endian bytes.
    #[serde(default)]
    crc32c: Option<String>,
}

impl GcsMirror {
    /// A client for a `gs://` backend. With `endpoint:` set, or else `STORAGE_EMULATOR_HOST` in
    /// the environment (an emulator, as Google's own client libraries read it), no credentials
    /// are used; otherwise application default credentials (read now, exchanged for tokens on
    /// first use).
    pub fn open(backend: &Backend, options: &OpenOptions) -> Result<Self, ObjectError> {
        let BackendUrl::Gcs { bucket, prefix } = &backend.url else {
            return Err(ObjectError::config(&backend.name, "not a gs:// backend"));
        };
        let subject = || format!("{} ({})", backend.name, backend.url);
        let endpoint = backend.options.endpoint.clone().or_else(emulator_host);
        let credentials = match &endpoint {
            Some(_) => None,
            None => {
                let store = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|error| {
                        ObjectError::config(subject(), "cannot set up GCS credentials")
                            .with_source(error)
                    })?;
                Some(Arc::clone(store.credentials()))
            }
        };
        // No read timeout: reqwest's counts from the start of a request and would cut a large
        // upload; silence is watched per request instead (`network::send`).
        let builder = reqwest::Client::builder();
        // The kernel gives up a connection whose sent bytes stay unacknowledged for the idle period.
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        let builder = builder.tcp_user_timeout(options.timeouts.idle);
        let http = builder
            .connect_timeout(options.timeouts.connect)
            .build()
            .map_err(|error| {
                ObjectError::config(subject(), "cannot build an HTTP client").with_source(error)
            })?;
        // Parts of resumable uploads must be multiples of 256 KiB.
        let part_size = options.uploads.part_size.div_ceil(CHUNK_GRANULE) * CHUNK_GRANULE;
        Ok(Self {
            http,
            endpoint: endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            credentials,
            uploads: UploadSettings {
                part_size,
                ..options.uploads
            },
            idle: options.timeouts.idle,
        })
    }

    fn subject(&self, name: &str) -> String {
        format!("gs://{}/{name}", self.bucket)
    }

    /// `ENDPOINT/[upload/]storage/v1/b/BUCKET/o[/NAME]`, every segment percent-encoded.
    fn url(&self, upload: bool, name: Option<&str>) -> Result<url::Url, ObjectError> {
        let mut url = url::Url::parse(&self.endpoint)
            .map_err(|error| ObjectError::config(&self.endpoint, "not a URL").with_source(error))?;
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| ObjectError::config(&self.endpoint, "not a base URL"))?;
            segments.pop_if_empty();
            if upload {
                segments.push("upload");
            }
            segments.extend(["storage", "v1", "b", &self.bucket, "o"]);
            if let Some(name) = name {
                segments.push(name);
            }
        }
        Ok(url)
    }

    /// A request with the OAuth token, if any.
    async fn request(
        &self,
        method: Method,
        url: url::Url,
        subject: &str,
    ) -> Result<RequestBuilder, ObjectError> {
        let request = self.http.request(method, url);
        match &self.credentials {
            None => Ok(request),
            Some(provider) => {
                let credential = provider.get_credential().await.map_err(|error| {
                    ObjectError::new(ObjectErrorKind::Refused, subject, "cannot get a GCS token")
                        .with_source(error)
                })?;
                Ok(request.bearer_auth(&credential.bearer))
            }
        }
    }

    /// Sends `request` with `body`, giving up after the idle timeout of silence; a failure status
    /// becomes a classified error quoting the answer.
    async fn send(
        &self,
        request: RequestBuilder,
        body: Option<Bytes>,
        subject: &str,
    ) -> Result<Response, ObjectError> {
        let length = body.as_ref().map_or(0, |body| body.len() as u64);
        let body = body.map(|bytes| futures::stream::iter(network::pieces(bytes)).boxed());
        self.send_body(request, body, length, subject).await
    }

    /// [`GcsMirror::send`] with a streamed body of `length` bytes.
    async fn send_stream(
        &self,
        request: RequestBuilder,
        body: impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
        length: u64,
        subject: &str,
    ) -> Result<Response, ObjectError> {
        self.send_body(request, Some(body.boxed()), length, subject)
            .await
    }

    async fn send_body(
        &self,
        request: RequestBuilder,
        body: Option<network::UploadBody>,
        length: u64,
        subject: &str,
    ) -> Result<Response, ObjectError> {
        let response = network::send(request, body, length, self.idle)
            .await
            .map_err(|error| {
                ObjectError::new(
                    ObjectErrorKind::Transient,
                    subject,
                    format!("request failed: {error}"),
                )
                .with_source(error)
            })?;
        let status = response.status();
        if status.is_success() || status == StatusCode::PERMANENT_REDIRECT {
            return Ok(response);
        }
        let body = network::body_bytes(response, self.idle, MAX_ANSWER_BYTES)
            .await
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let kind = match status.as_u16() {
            404 => ObjectErrorKind::NotFound,
            412 => ObjectErrorKind::AlreadyExists,
            408 | 429 | 500..=599 => ObjectErrorKind::Transient,
            _ => ObjectErrorKind::Refused,
        };
        let excerpt: String = body.chars().take(300).collect();
        Err(ObjectError::new(
            kind,
            subject,
            format!("HTTP {status}: {excerpt}"),
        ))
    }

    /// One streamed media upload of exactly `size` bytes. GCS commits the object once it has
    /// them all, so the guarded body holds the last bytes back until the stream's verified end.
    async fn put_single(
        &self,
        name: &str,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), ObjectError> {
        let subject = self.subject(name);
        let (body, tally) = Guarded::new(stream, &subject, size);
        let mut url = self.url(true, None)?;
        url.query_pairs_mut()
            .append_pair("uploadType", "media")
            .append_pair("name", name)
            .append_pair("ifGenerationMatch", "0");
        let request = self
            .request(Method::POST, url, &subject)
            .await?
            .header("content-type", "application/octet-stream");
        let sent = self.send_stream(request, body, size, &subject).await;
        let (input_error, crc32c) = {
            let mut tally = tally
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (tally.take_error(), tally.crc32c())
        };
        if let Some(error) = input_error {
            return Err(ObjectError::from_stream(&subject, error));
        }
        self.check_stored(sent?, &subject, size, crc32c).await
    }

    async fn put_resumable(
        &self,
        name: &str,
        size: u64,
        mut reader: PartReader,
    ) -> Result<(), ObjectError> {
        let subject = self.subject(name);
        let mut url = self.url(true, None)?;
        url.query_pairs_mut()
            .append_pair("uploadType", "resumable")
            .append_pair("name", name)
            .append_pair("ifGenerationMatch", "0");
        let request = self
            .request(Method::POST, url, &subject)
            .await?
            .header("content-type", "application/json")
            .header("x-upload-content-type", "application/octet-stream")
            .header("x-upload-content-length", size);
        let response = self
            .send(request, Some(Bytes::from_static(b"{}")), &subject)
            .await?;
        let session = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| url::Url::parse(value).ok())
            .ok_or_else(|| {
                ObjectError::new(
                    ObjectErrorKind::Refused,
                    &subject,
                    "no Location for the resumable upload",
                )
            })?;
        let result = self
            .upload_chunks(&session, size, &mut reader, &subject)
            .await;
        if result.is_err() {
            // Cancel the session (GCS answers 499); a leftover one expires after a week anyway.
            if let Ok(request) = self.request(Method::DELETE, session, &subject).await {
                let _ = network::send(request, None, 0, self.idle).await;
            }
        }
        result
    }

    async fn upload_chunks(
        &self,
        session: &url::Url,
        size: u64,
        reader: &mut PartReader,
        subject: &str,
    ) -> Result<(), ObjectError> {
        let mut offset = 0u64;
        while let Some(chunk) = reader.next_part().await? {
            let end = offset + chunk.len() as u64;
            let last = end >= size;
            if last && reader.next_part().await?.is_some() {
                // Unreachable with a verifying reader (it fails on excess bytes); kept as a guard.
                return Err(ObjectError::new(
                    ObjectErrorKind::Corrupt,
                    subject,
                    "more bytes than the blob size",
                ));
            }
            // Only the last chunk names the total, which completes the object: it goes out only
            // after the reader verified the whole blob above.
            let range = if last {
                format!("bytes {offset}-{}/{size}", end - 1)
            } else {
                format!("bytes {offset}-{}/*", end - 1)
            };
            let request = self
                .request(Method::PUT, session.clone(), subject)
                .await?
                .header("content-range", range);
            let response = self.send(request, Some(chunk), subject).await?;
            if last {
                return self
                    .check_stored(response, subject, size, reader.crc32c())
                    .await;
            }
            if response.status() != StatusCode::PERMANENT_REDIRECT {
                return Err(ObjectError::new(
                    ObjectErrorKind::Refused,
                    subject,
                    format!(
                        "expected 308 for a non-final chunk, got {}",
                        response.status()
                    ),
                ));
            }
            offset = end;
        }
        // A zero-byte blob has no chunk: finish the upload with an empty one.
        let request = self
            .request(Method::PUT, session.clone(), subject)
            .await?
            .header("content-range", format!("bytes */{size}"));
        let response = self.send(request, None, subject).await?;
        self.check_stored(response, subject, size, reader.crc32c())
            .await
    }

    /// Reads the object resource a completed upload returns and checks its size and, when the
    /// server reports one, its CRC32C against the CRC32C of the (verified) bytes sent: GCS's own record
    /// of what it stored.
    async fn check_stored(
        &self,
        response: Response,
        subject: &str,
        size: u64,
        crc32c: u32,
    ) -> Result<(), ObjectError> {
        let object = self
            .object_resource(response, subject, ObjectErrorKind::Refused)
            .await?;
        compare_stored(&object, subject, size, crc32c)
    }

    /// The object resource in `response`'s body, read with the idle timeout; a body that is not
    /// one is an error of `kind`.
    async fn object_resource(
        &self,
        response: Response,
        subject: &str,
        kind: ObjectErrorKind,
    ) -> Result<ObjectResource, ObjectError> {
        let body = network::body_bytes(response, self.idle, MAX_ANSWER_BYTES)
            .await
            .map_err(|error| {
                ObjectError::new(
                    ObjectErrorKind::Transient,
                    subject,
                    format!("cannot read the object resource: {error}"),
                )
            })?;
        serde_json::from_slice(&body).map_err(|error| {
            ObjectError::new(kind, subject, "the answer is not an object resource")
                .with_source(error)
        })
    }
}

/// The emulator named by `STORAGE_EMULATOR_HOST` (`127.0.0.1:4443` or `http://127.0.0.1:4443`),
/// as a URL; `None` when unset or empty.
fn emulator_host() -> Option<String> {
    let host = std::env::var(EMULATOR_VARIABLE).ok()?;
    let host = host.trim().trim_end_matches('/');
    if host.is_empty() {
        return None;
    }
    tracing::info!(
        endpoint = host,
        "GCS requests go to the emulator in {EMULATOR_VARIABLE}"
    );
    Some(if host.contains("://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    })
}

fn compare_stored(
    object: &ObjectResource,
    subject: &str,
    size: u64,
    crc32c: u32,
) -> Result<(), ObjectError> {
    match object.size.parse::<u64>() {
        Ok(stored) if stored == size => {}
        _ => {
            return Err(ObjectError::new(
                ObjectErrorKind::Corrupt,
                subject,
                format!("the server stored {} bytes, expected {size}", object.size),
            ));
        }
    }
    use base64::Engine as _;
    let sent = base64::engine::general_purpose::STANDARD.encode(crc32c.to_be_bytes());
    match &object.crc32c {
        Some(stored) if *stored != sent => Err(ObjectError::new(
            ObjectErrorKind::Corrupt,
            subject,
            format!("the server stored content with CRC32C {stored}, sent {sent}"),
        )),
        _ => Ok(()),
    }
}

/// Places are full object names, prefix included.
#[async_trait::async_trait]
impl Keyed for GcsMirror {
    type Place = String;

    fn base(&self) -> String {
        BlobMirror::describe(self)
    }

    fn place(&self, key: &str) -> String {
        join_prefix(&self.prefix, key)
    }

    fn url(&self, key: &str) -> String {
        self.subject(&self.place(key))
    }

    async fn size_at(&self, name: &String) -> Result<Option<u64>, ObjectError> {
        let subject = self.subject(name);
        let request = self
            .request(Method::GET, self.url(false, Some(name))?, &subject)
            .await?;
        let response = match self.send(request, None, &subject).await {
            Ok(response) => response,
            Err(error) if error.kind() == ObjectErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let object = self
            .object_resource(response, &subject, ObjectErrorKind::Transient)
            .await?;
        object.size.parse().map(Some).map_err(|_| {
            ObjectError::new(
                ObjectErrorKind::Refused,
                &subject,
                format!("bad object size {:?}", object.size),
            )
        })
    }

    fn subject_of(&self, name: &String) -> String {
        self.subject(name)
    }

    async fn write_new(
        &self,
        name: &String,
        _digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), ObjectError> {
        if size > self.uploads.multipart_threshold {
            let reader = PartReader::new(stream, &self.subject(name), size, self.uploads.part_size);
            self.put_resumable(name, size, reader).await
        } else {
            self.put_single(name, size, stream).await
        }
    }

    async fn fetch_at(&self, name: &String) -> Result<ByteStream, ObjectError> {
        let subject = self.subject(name);
        let mut url = self.url(false, Some(name))?;
        url.query_pairs_mut().append_pair("alt", "media");
        let request = self.request(Method::GET, url, &subject).await?;
        let response = self.send(request, None, &subject).await?;
        let stream = network::body_stream(response, self.idle).map(move |chunk| {
            chunk.map_err(|error| {
                StoreError::new(
                    StoreErrorKind::Network,
                    subject.clone(),
                    format!("reading the object failed: {error}"),
                )
            })
        });
        Ok(Box::pin(stream))
    }
}

#[async_trait::async_trait]
impl BlobMirror for GcsMirror {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("gs://{}", self.bucket)
        } else {
            format!("gs://{}/{}", self.bucket, self.prefix)
        }
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, ObjectError> {
        self.size_at(&blob_key(&self.prefix, digest)).await
    }

    async fn put_verified_blob(
        &self,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<PutOutcome, ObjectError> {
        self.put_verified_at(&blob_key(&self.prefix, digest), digest, size, stream)
            .await
    }

    async fn fetch_blob(&self, digest: &Digest) -> Result<ByteStream, ObjectError> {
        self.fetch_at(&blob_key(&self.prefix, digest)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(size: &str, crc32c: Option<&str>) -> ObjectResource {
        ObjectResource {
            size: size.to_owned(),
            crc32c: crc32c.map(str::to_owned),
        }
    }

    #[test]
    fn the_stored_size_and_crc32c_must_be_what_was_sent() {
        // CRC32C("hello") = 0x9a71bb4c.
        let crc = crate::parts::crc32c_of(b"hello");
        assert_eq!(crc, 0x9a71_bb4c);
        let good = "mnG7TA==";
        assert!(compare_stored(&object("5", Some(good)), "o", 5, crc).is_ok());
        assert!(
            compare_stored(&object("5", None), "o", 5, crc).is_ok(),
            "no CRC32C reported"
        );
        let error = compare_stored(&object("5", Some("AAAAAA==")), "o", 5, crc).unwrap_err();
        assert_eq!(error.kind(), ObjectErrorKind::Corrupt);
        assert!(compare_stored(&object("4", Some(good)), "o", 5, crc).is_err());
    }
}
