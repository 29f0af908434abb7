//! Real servers on 127.0.0.1, each a child process killed when its handle drops.
//!
//! The registry (`registry.rs`), S3 (s3s-fs, `s3.rs`) and GCS (fake-gcs-server, `gcs.rs`)
//! servers, and containerd (`containerd.rs`) as a real pulling client, all reuse [`process`]
//! for log capture and readiness.

mod containerd;
mod gcs;
mod process;
mod registry;
mod s3;
mod silent;
mod tls;

pub use containerd::ContainerdServer;
pub use gcs::GcsServer;
pub use process::AccessLogEntry;
pub use registry::{RegistryOptions, RegistryServer};
pub use s3::{S3Request, S3Server};
pub use silent::SilentServer;
