//! [`SilentServer`]: accepts TCP connections on 127.0.0.1 and never answers, like a server that hung
//! or a firewall that lets the handshake through and drops everything after. Tests of timeouts
//! point clients at it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// A listener that accepts connections, holds them open and never reads or writes a byte.
/// Stops (and closes every connection) when dropped.
#[derive(Debug)]
pub struct SilentServer {
    host: String,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentServer {
    /// Starts listening on a free port of 127.0.0.1. Must be called within a tokio runtime.
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| Error::Spawn {
                program: "silent server listener".to_owned(),
                source,
            })?;
        let host = listener
            .local_addr()
            .map_err(|source| Error::Spawn {
                program: "silent server listener".to_owned(),
                source,
            })?
            .to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = {
            let accepted = Arc::clone(&accepted);
            tokio::spawn(async move {
                // Held, never read: the peer's bytes stay in the socket buffers.
                let held = Mutex::new(Vec::new());
                while let Ok((stream, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    held.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(stream);
                }
            })
        };
        Ok(Self {
            host,
            accepted,
            task,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
