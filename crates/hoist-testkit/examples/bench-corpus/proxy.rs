//! `proxy`: the test kit's fault proxy as a process, playing a wide-area link in front of one
//! registry for `ci/bench-promote.sh --wan` (latency each way, a bandwidth cap per connection).
//! Runs until killed.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use hoist_testkit::{FaultProxy, Faults, ProxyOptions};

/// Where to listen, what to forward to, and the link to play.
#[derive(Debug, clap::Args)]
pub struct ProxyArguments {
    /// The registry behind the proxy, `127.0.0.1:PORT`.
    #[arg(long)]
    upstream: String,
    /// Where to listen, `127.0.0.1:PORT`.
    #[arg(long)]
    listen: SocketAddr,
    /// Round-trip time added to every request (half each way), in milliseconds.
    #[arg(long, default_value_t = 40)]
    rtt_ms: u64,
    /// Bytes per second per connection and direction, in MB/s (10^6 bytes); 0 for no cap.
    #[arg(long, default_value_t = 25.0)]
    bandwidth_mb: f64,
}

pub async fn run(arguments: ProxyArguments) -> anyhow::Result<()> {
    let mut faults = Faults::none().latency(Duration::from_millis(arguments.rtt_ms) / 2);
    if arguments.bandwidth_mb > 0.0 {
        faults = faults.bandwidth((arguments.bandwidth_mb * 1e6) as u64);
    }
    let proxy = FaultProxy::start_with(
        &arguments.upstream,
        faults,
        ProxyOptions {
            listen: Some(arguments.listen),
            keep_host: false,
        },
    )
    .await
    .with_context(|| format!("listening on {}", arguments.listen))?;
    println!(
        "proxy {} -> {} ({} ms RTT, {} MB/s per connection)",
        proxy.host(),
        arguments.upstream,
        arguments.rtt_ms,
        arguments.bandwidth_mb
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for a signal")?;
    Ok(())
}
