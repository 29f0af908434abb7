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

use futures::StreamExt;
use hoist_oci::Digest;
use hoist_store::{ByteStream, StoreError, StoreErrorKind};
use object_store::gcp::{GcpCredentialProvider, GoogleCloudStorageBuilder};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::catalogue::{Backend, BackendUrl};
use crate::error::{ObjectError, ObjectErrorKind};
use crate::file::existing;
use crate::parts::{Guarded, PartReader};
use crate::{BlobMirror, OpenOptions, PutOutcome, UploadSettings, blob_key};

const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";
/// Resumable upload chunks must be multiples of 256 KiB.
const CHUNK_GRANULE: u64 = 256 * 1024;

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
    /// A client for a `gs://` backend. With `endpoint:` set (an emulator) no credentials are used;
    /// otherwise application default credentials (read now, exchanged for tokens on first use).
    pub fn open(backend: &Backend, options: &OpenOptions) -> Result<Self, ObjectError> {
        let BackendUrl::Gcs { bucket, prefix } = &backend.url else {
            return Err(ObjectError::config(&backend.name, "not a gs:// backend"));
        };
        let subject = || format!("{} ({})", backend.name, backend.url);
        let credentials = match &backend.options.endpoint {
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
        let http = reqwest::Client::builder().build().map_err(|error| {
            ObjectError::config(subject(), "cannot build an HTTP client").with_source(error)
        })?;
        // Parts of resumable uploads must be multiples of 256 KiB.
        let part_size = options.uploads.part_size.div_ceil(CHUNK_GRANULE) * CHUNK_GRANULE;
        Ok(Self {
            http,
            endpoint: backend
                .options
                .endpoint
                .clone()
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            credentials,
            uploads: UploadSettings {
                part_size,
                ..options.uploads
            },
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

    async fn send(&self, request: RequestBuilder, subject: &str) -> Result<Response, ObjectError> {
        let response = request.send().await.map_err(|error| {
            ObjectError::new(ObjectErrorKind::Transient, subject, "request failed")
                .with_source(error)
        })?;
        let status = response.status();
        if status.is_success() || status == StatusCode::PERMANENT_REDIRECT {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
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
            .header("content-type", "application/octet-stream")
            .header("content-length", size)
            .body(reqwest::Body::wrap_stream(body));
        let sent = self.send(request, &subject).await;
        let (input_error, crc32c) = {
            let mut tally = tally
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (tally.take_error(), tally.crc32c())
        };
        if let Some(error) = input_error {
            return Err(ObjectError::from_stream(&subject, error));
        }
        check_stored(sent?, &subject, size, crc32c).await
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
            .header("x-upload-content-length", size)
            .body("{}");
        let response = self.send(request, &subject).await?;
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
                let _ = request.send().await;
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
                .header("content-range", range)
                .body(chunk);
            let response = self.send(request, subject).await?;
            if last {
                return check_stored(response, subject, size, reader.crc32c()).await;
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
        let response = self.send(request, subject).await?;
        check_stored(response, subject, size, reader.crc32c()).await
    }
}

/// Reads the object resource a completed upload returns and checks its size and, when the
/// server reports one, its CRC32C against the CRC32C of the (verified) bytes sent: GCS's own
/// record of what it stored.
async fn check_stored(
    response: Response,
    subject: &str,
    size: u64,
    crc32c: u32,
) -> Result<(), ObjectError> {
    let object: ObjectResource = response.json().await.map_err(|error| {
        ObjectError::new(
            ObjectErrorKind::Refused,
            subject,
            "the upload answer is not an object resource",
        )
        .with_source(error)
    })?;
    compare_stored(&object, subject, size, crc32c)
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
        let name = blob_key(&self.prefix, digest);
        let subject = self.subject(&name);
        let request = self
            .request(Method::GET, self.url(false, Some(&name))?, &subject)
            .await?;
        let response = match self.send(request, &subject).await {
            Ok(response) => response,
            Err(error) if error.kind() == ObjectErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let object: ObjectResource = response.json().await.map_err(|error| {
            ObjectError::new(
                ObjectErrorKind::Transient,
                &subject,
                "cannot read the object resource",
            )
            .with_source(error)
        })?;
        object.size.parse().map(Some).map_err(|_| {
            ObjectError::new(
                ObjectErrorKind::Refused,
                &subject,
                format!("bad object size {:?}", object.size),
            )
        })
    }

    async fn put_verified_blob(
        &self,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<PutOutcome, ObjectError> {
        let name = blob_key(&self.prefix, digest);
        let subject = self.subject(&name);
        if let Some(found) = self.blob_size(digest).await? {
            return existing(&subject, size, found);
        }
        let written = if size > self.uploads.multipart_threshold {
            let reader = PartReader::new(stream, &subject, size, self.uploads.part_size);
            self.put_resumable(&name, size, reader).await
        } else {
            self.put_single(&name, size, stream).await
        };
        match written {
            Ok(()) => Ok(PutOutcome::Written),
            Err(error) if error.kind() == ObjectErrorKind::AlreadyExists => {
                let found = self.blob_size(digest).await?.unwrap_or(0);
                existing(&subject, size, found)
            }
            Err(error) => Err(error),
        }
    }

    async fn fetch_blob(&self, digest: &Digest) -> Result<ByteStream, ObjectError> {
        let name = blob_key(&self.prefix, digest);
        let subject = self.subject(&name);
        let mut url = self.url(false, Some(&name))?;
        url.query_pairs_mut().append_pair("alt", "media");
        let request = self.request(Method::GET, url, &subject).await?;
        let response = self.send(request, &subject).await?;
        let stream = response.bytes_stream().map(move |chunk| {
            chunk.map_err(|error| {
                StoreError::new(
                    StoreErrorKind::Network,
                    subject.clone(),
                    "reading the object failed",
                )
                .with_source(error)
            })
        });
        Ok(Box::pin(stream))
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
