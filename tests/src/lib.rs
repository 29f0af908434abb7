//! End-to-end tests of the hoist binary live in `it/`; this library holds their helpers.
