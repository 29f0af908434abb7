//! A server child process whose output is captured line by line.
//!
//! Output is read by two plain threads (not tokio tasks) so servers work the same under any
//! runtime, or none, and are killed from `Drop` without an executor.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a server may take to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The access log is taken as complete once no line arrived for this long: the registry writes
/// a line only after the response went out, so a client can be faster than the log.
const SETTLE_QUIET: Duration = Duration::from_millis(50);
/// Upper bound on waiting for the log to settle.
const SETTLE_LIMIT: Duration = Duration::from_secs(2);

/// Everything a server printed, shared between reader threads and the server handle.
#[derive(Debug, Default)]
pub(crate) struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct LogState {
    lines: Vec<String>,
    last_line_at: Option<Instant>,
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A reader thread never panics while holding the lock, so poisoning only loses nothing.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, line: String) {
        let mut state = self.lock();
        state.lines.push(line);
        state.last_line_at = Some(Instant::now());
        self.changed.notify_all();
    }

    /// Counts one closed output stream of a process (its own counter: after a restart the old
    /// process's readers may still be finishing).
    fn close_stream(&self, closed_streams: &AtomicUsize) {
        let _state = self.lock();
        closed_streams.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_all();
    }

    /// All lines so far, joined.
    pub(crate) fn text(&self) -> String {
        self.lock().lines.join("\n")
    }

    /// All lines, once no new line arrived for 50 ms (waiting at most 2 s).
    pub(crate) fn settled_lines(&self) -> Vec<String> {
        let called_at = Instant::now();
        let deadline = called_at + SETTLE_LIMIT;
        let mut state = self.lock();
        loop {
            // Counted from the call at the latest: the line for a response the caller just got
            // may still be on its way even if the log was quiet before.
            let quiet_since = state
                .last_line_at
                .map_or(called_at, |at| at.max(called_at))
                .elapsed();
            let now = Instant::now();
            if quiet_since >= SETTLE_QUIET || now >= deadline {
                return state.lines.clone();
            }
            let wait = (SETTLE_QUIET - quiet_since).min(deadline - now);
            state = self
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

/// A running child process with captured output.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    /// Starts `command` and waits until a line of its output yields `Some` from `ready`
    /// (returned), or fails with the whole log when it exits or 10 s pass.
    pub(crate) fn start<T>(
        mut command: Command,
        program: &str,
        log: &Arc<Log>,
        ready: impl Fn(&str) -> Option<T>,
    ) -> Result<(Self, T)> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|source| Error::Spawn {
            program: program.to_owned(),
            source,
        })?;
        let first_line = log.lock().lines.len();
        let closed_streams = Arc::new(AtomicUsize::new(0));
        if let Some(stdout) = child.stdout.take() {
            spawn_reader(stdout, Arc::clone(log), Arc::clone(&closed_streams));
        }
        if let Some(stderr) = child.stderr.take() {
            spawn_reader(stderr, Arc::clone(log), Arc::clone(&closed_streams));
        }
        let mut process = Self { child };

        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = first_line;
        let mut state = log.lock();
        loop {
            for line in &state.lines[seen..] {
                if let Some(found) = ready(line) {
                    drop(state);
                    return Ok((process, found));
                }
            }
            seen = state.lines.len();
            let reason = if closed_streams.load(Ordering::SeqCst) == 2 {
                Some("it exited".to_owned())
            } else if Instant::now() >= deadline {
                Some(format!("no readiness line within {START_TIMEOUT:?}"))
            } else {
                None
            };
            if let Some(reason) = reason {
                drop(state);
                process.kill();
                return Err(Error::ServerStart {
                    program: program.to_owned(),
                    reason,
                    log: log.text(),
                });
            }
            state = log
                .changed
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        // Errors mean it is already gone, which is what we want.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process still runs.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_reader(
    stream: impl Read + Send + 'static,
    log: Arc<Log>,
    closed_streams: Arc<AtomicUsize>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(line) => log.push(line),
                Err(_) => break,
            }
        }
        log.close_stream(&closed_streams);
    });
}

/// One request from a server's access log (Apache combined format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogEntry {
    /// `GET`, `HEAD`, `PUT`, ...
    pub method: String,
    /// The request target: path and query.
    pub path: String,
    /// The response status.
    pub status: u16,
    /// Response body bytes written.
    pub bytes: u64,
}

impl AccessLogEntry {
    /// Parses `127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 200 2 "" "agent"`; other lines give `None`.
    pub fn parse(line: &str) -> Option<Self> {
        let (_, after_date) = line.split_once("] \"")?;
        let (request, after_request) = after_date.split_once("\" ")?;
        let mut request_parts = request.split(' ');
        let method = request_parts.next()?;
        let path = request_parts.next()?;
        let protocol = request_parts.next()?;
        if !protocol.starts_with("HTTP/") {
            return None;
        }
        let mut response_parts = after_request.split(' ');
        let status = response_parts.next()?.parse().ok()?;
        // Combined log format writes "-" for an empty body.
        let bytes = response_parts.next()?.parse().unwrap_or(0);
        Some(Self {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_combined_log_lines() {
        let line = r#"127.0.0.1 - - [21/Nov/2026:16:38:32 +0000] "HEAD /v2/a/b/blobs/sha256:00 HTTP/1.1" 404 157 "" "curl/7.88.1""#;
        assert_eq!(
            AccessLogEntry::parse(line),
            Some(AccessLogEntry {
                method: "HEAD".into(),
                path: "/v2/a/b/blobs/sha256:00".into(),
                status: 404,
                bytes: 157,
            })
        );
        assert_eq!(
            AccessLogEntry::parse(r#"time="x" level=info msg="listening on 127.0.0.1:1""#),
            None
        );
    }
}
