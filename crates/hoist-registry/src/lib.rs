//! OCI registry access: auth, retries, per-host limits, inventory, streaming blobs.
