//! Real servers on 127.0.0.1, each a child process killed when its handle drops.
//!
//! Only the registry exists today; S3 (s3s-fs) and GCS (fake-gcs-server) emulators will sit
//! beside it as `s3.rs` and `gcs.rs`, reusing [`process`] for log capture and readiness.

mod gcs;
mod process;
mod registry;
mod s3;
mod silent;
mod tls;

pub use gcs::GcsServer;
pub use process::AccessLogEntry;
pub use registry::{RegistryOptions, RegistryServer};
pub use s3::S3Server;
pub use silent::SilentServer;
