//! [`S3Mirror`]: blobs in an S3 bucket (or an S3-compatible server), with the AWS SDK.
//!
//! A blob goes up in one streamed `PutObject` carrying `x-amz-checksum-sha256` (the blob's own
//! digest, so S3 verifies the whole object against it and nothing is hashed here); one larger
//! than the multipart threshold (5 GiB, S3's limit for one request) as a multipart upload with one
//! part in memory at a time and a CRC32C per part. `If-None-Match: *` on `PutObject` and
//! `CompleteMultipartUpload` makes the write create-only
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>).
//! The server's check is not trusted alone (s3s-fs answers `BadDigest` yet keeps the object):
//! the stream is verified by the caller, its last bytes are held back until that verification
//! ended, and a multipart upload is completed only after it. Any failure aborts the multipart
//! upload.
//!
//! Requests time out on silence, not on duration: a connect timeout, and the idle timeout of
//! [`crate::network`] in place of the SDK's read timeout and stalled-stream protection.

use std::fmt;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hoist_oci::Digest;
use hoist_store::{ByteStream, StoreError, StoreErrorKind};

use crate::bucket::{Keyed, join_prefix};
use crate::catalogue::{Backend, BackendUrl};
use crate::error::{ObjectError, ObjectErrorKind};
use crate::network;
use crate::parts::{Guarded, GuardedBody, PartReader, crc32c_of};
use crate::{BlobMirror, OpenOptions, PutOutcome, UploadSettings, blob_key};

/// Static S3 credentials, for servers outside the AWS chain (tests). Never printed.
#[derive(Clone)]
pub struct S3Credentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("S3Credentials(redacted)")
    }
}

/// An S3 bucket (and key prefix) holding blobs.
#[derive(Debug, Clone)]
pub struct S3Mirror {
    client: Client,
    bucket: String,
    prefix: String,
    uploads: UploadSettings,
}

impl S3Mirror {
    /// A client for an `s3://` backend: region and endpoint from the catalogue, credentials from
    /// `options` or else the standard AWS chain. Makes no request for an explicit region and
    /// credentials.
    pub async fn open(backend: &Backend, options: &OpenOptions) -> Result<Self, ObjectError> {
        let BackendUrl::S3 { bucket, prefix } = &backend.url else {
            return Err(ObjectError::config(&backend.name, "not an s3:// backend"));
        };
        let settings = &backend.options;
        let timeouts = options.timeouts;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(network::s3_http_client(timeouts.idle))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeouts.connect)
                    .build(),
            )
            // The idle timeout watches bodies both ways; the SDK's own check (zero throughput for
            // 5 s) would fire first on a link that pauses.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        } else if settings.endpoint.is_some() {
            // S3-compatible servers ignore the region, but the signer needs one.
            loader = loader.region(Region::from_static("us-east-1"));
        }
        if let Some(credentials) = &options.s3_credentials {
            loader = loader.credentials_provider(Credentials::new(
                &credentials.access_key_id,
                &credentials.secret_access_key,
                None,
                None,
                "hoist",
            ));
        }
        let shared = loader.load().await;
        if shared.region().is_none() {
            return Err(ObjectError::config(
                format!("{} ({})", backend.name, backend.url),
                "no S3 region: set region: in the catalogue, or AWS_REGION",
            ));
        }
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.path_style)
            // Checksums are set explicitly (sha256, known up front); the SDK's own default
            // (CRC32 in aws-chunked trailers) is not understood by every S3-compatible server.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(Self {
            client: Client::from_conf(config.build()),
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            uploads: options.uploads,
        })
    }

    fn key(&self, digest: &Digest) -> String {
        blob_key(&self.prefix, digest)
    }

    fn subject(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// One streamed `PutObject`. Its `x-amz-checksum-sha256` is the blob's digest, known up
    /// front, so S3 verifies the whole object against the digest while nothing is hashed here;
    /// a streamed body is sent as `UNSIGNED-PAYLOAD` (the SDK would otherwise hash it to sign it).
    async fn put_single(
        &self,
        key: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), ObjectError> {
        let subject = self.subject(key);
        let (body, tally) = Guarded::new(stream, &subject, size);
        let length = i64::try_from(size).unwrap_or(i64::MAX);
        let sent = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/octet-stream")
            .content_length(length)
            .checksum_sha256(BASE64.encode(digest.as_bytes()))
            .if_none_match("*")
            .body(SdkByteStream::from_body_1_x(GuardedBody::new(body)))
            .send()
            .await;
        // The input's own failure (a mismatch) explains a failed body better than the SDK can.
        let input_error = tally
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take_error();
        if let Some(error) = input_error {
            return Err(ObjectError::from_stream(&subject, error));
        }
        sent.map_err(|error| sdk_error(&subject, error))?;
        Ok(())
    }

    async fn put_multipart(&self, key: &str, mut reader: PartReader) -> Result<(), ObjectError> {
        let subject = self.subject(key);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/octet-stream")
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .send()
            .await
            .map_err(|error| sdk_error(&subject, error))?;
        let Some(upload_id) = created.upload_id else {
            return Err(ObjectError::new(
                ObjectErrorKind::Refused,
                subject,
                "CreateMultipartUpload answered without an upload id",
            ));
        };
        let result = self.upload_parts(key, &upload_id, &mut reader).await;
        if result.is_err() {
            // Best effort: a failed abort leaves parts that the bucket's lifecycle rule removes;
            // no object is visible either way, since the upload was never completed.
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(error) = aborted {
                tracing::warn!(dst = %subject, error = %DisplayErrorContext(&error), "could not abort the multipart upload");
            }
        }
        result
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        reader: &mut PartReader,
    ) -> Result<(), ObjectError> {
        let subject = self.subject(key);
        let mut completed = Vec::new();
        let mut part_number = 0i32;
        // `None` only after the whole blob was read and verified: a mismatch fails here, before
        // the completion below can make the object visible.
        while let Some(part) = reader.next_part().await? {
            part_number += 1;
            // CRC32C, not sha256: the blob's digest was verified once already, and a part
            // checksum only guards the transfer; the payload is not hashed again to sign it.
            let checksum = BASE64.encode(crc32c_of(&part).to_be_bytes());
            let length = i64::try_from(part.len()).unwrap_or(i64::MAX);
            let uploaded = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(part_number)
                .content_length(length)
                .checksum_crc32_c(&checksum)
                .body(SdkByteStream::from(part))
                .customize()
                .disable_payload_signing()
                .send()
                .await
                .map_err(|error| sdk_error(&format!("{subject} (part {part_number})"), error))?;
            completed.push(
                CompletedPart::builder()
                    .part_number(part_number)
                    .set_e_tag(uploaded.e_tag)
                    .checksum_crc32_c(checksum)
                    .build(),
            );
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map_err(|error| sdk_error(&subject, error))?;
        Ok(())
    }
}

/// Places are full keys, prefix included.
#[async_trait::async_trait]
impl Keyed for S3Mirror {
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

    async fn size_at(&self, key: &String) -> Result<Option<u64>, ObjectError> {
        let answer = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match answer {
            Ok(head) => Ok(Some(
                head.content_length
                    .and_then(|length| u64::try_from(length).ok())
                    .unwrap_or(0),
            )),
            Err(error) => {
                let error = sdk_error(&self.subject(key), error);
                if error.kind() == ObjectErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(error)
                }
            }
        }
    }

    fn subject_of(&self, key: &String) -> String {
        self.subject(key)
    }

    async fn write_new(
        &self,
        key: &String,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), ObjectError> {
        if size > self.uploads.multipart_threshold {
            let reader = PartReader::new(stream, &self.subject(key), size, self.uploads.part_size);
            self.put_multipart(key, reader).await
        } else {
            self.put_single(key, digest, size, stream).await
        }
    }

    async fn fetch_at(&self, key: &String) -> Result<ByteStream, ObjectError> {
        let subject = self.subject(key);
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| sdk_error(&subject, error))?;
        let stream = futures::stream::try_unfold(object.body, move |mut body| {
            let subject = subject.clone();
            async move {
                match body.next().await {
                    None => Ok(None),
                    Some(Ok(chunk)) => Ok(Some((chunk, body))),
                    Some(Err(error)) => Err(StoreError::new(
                        StoreErrorKind::Network,
                        subject,
                        "reading the object failed",
                    )
                    .with_source(error)),
                }
            }
        });
        Ok(Box::pin(stream))
    }
}

#[async_trait::async_trait]
impl BlobMirror for S3Mirror {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, ObjectError> {
        self.size_at(&self.key(digest)).await
    }

    async fn put_verified_blob(
        &self,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<PutOutcome, ObjectError> {
        self.put_verified_at(&self.key(digest), digest, size, stream)
            .await
    }

    async fn fetch_blob(&self, digest: &Digest) -> Result<ByteStream, ObjectError> {
        self.fetch_at(&self.key(digest)).await
    }
}

/// Classifies an SDK error by HTTP status and S3 error code.
fn sdk_error<E>(
    subject: &str,
    error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16());
    let code = error.code().map(str::to_owned);
    let kind = match (status, code.as_deref()) {
        (_, Some("BadDigest" | "XAmzContentSHA256Mismatch" | "InvalidDigest")) => {
            ObjectErrorKind::Corrupt
        }
        (Some(404), _) | (_, Some("NoSuchKey" | "NoSuchBucket" | "NoSuchUpload")) => {
            ObjectErrorKind::NotFound
        }
        (Some(412), _) | (_, Some("PreconditionFailed")) => ObjectErrorKind::AlreadyExists,
        // 409 ConditionalRequestConflict: a concurrent conditional write; try again.
        (Some(409 | 429 | 500..=599), _) => ObjectErrorKind::Transient,
        (Some(_), _) => ObjectErrorKind::Refused,
        (None, _) => match &error {
            SdkError::ConstructionFailure(_) => ObjectErrorKind::Config,
            _ => ObjectErrorKind::Transient,
        },
    };
    let message = match (status, code) {
        (Some(status), Some(code)) => {
            format!("HTTP {status} {code}: {}", DisplayErrorContext(&error))
        }
        (Some(status), None) => format!("HTTP {status}: {}", DisplayErrorContext(&error)),
        _ => DisplayErrorContext(&error).to_string(),
    };
    ObjectError::new(kind, subject, message).with_source(error)
}
