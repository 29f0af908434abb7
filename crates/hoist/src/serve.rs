//! `hoist serve`: flags to a [`hoist_serve::ServeConfig`], a runtime, a socket, and SIGTERM.

use std::net::IpAddr;

use anyhow::Context as _;
use hoist_object::{Backend, Catalogue, Selector};
use hoist_serve::{Mirrors, Redirector, RegionMap, ServeConfig, Upstream};
use ipnet::IpNet;

use crate::cli::{LogFormat, ServeArgs};
use crate::exit::Outcome;

/// Logging for the server: the access log (target `hoist_serve::access`) at info level even
/// without `-v`, as text or JSON lines on stderr. `HOIST_LOG` overrides.
///
/// Lines go through a worker thread that writes them in batches (one `write` for many lines),
/// so requests never wait on stderr; none is dropped (a full queue makes the logger wait). The
/// returned guard flushes what is queued when it drops: keep it until the process ends.
pub fn init_logging(verbose: u8, format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let default = match verbose {
        0 => "warn,hoist=info,hoist_serve=info",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOIST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("hoist-serve-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder
            .with_ansi(
                std::env::var_os("NO_COLOR").is_none()
                    && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )
            .init(),
    }
    guard
}

pub fn run(args: &ServeArgs) -> anyhow::Result<Outcome> {
    let config = config(args)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(args, config))
}

async fn serve(args: &ServeArgs, config: ServeConfig) -> anyhow::Result<Outcome> {
    let address = match args.listen.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => args.listen.clone(),
    };
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let bound = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let redirector = Redirector::new(config);
    eprintln!("hoist serve: listening on http://{bound}");
    redirector.serve(listener, stop_signal()).await?;
    eprintln!("hoist serve: stopped");
    Ok(Outcome::Ok)
}

/// Completes on SIGTERM (what container runtimes send) or Ctrl-C.
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(terminate) => terminate,
            Err(error) => {
                tracing::warn!(error = %error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: no new connections; finishing the requests in flight");
}

fn config(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
    let mut config = ServeConfig::new(Upstream::parse(&args.upstream).context("--upstream")?);
    config.upstream_path = args.upstream_path.clone();
    config.signature_upstream = args
        .signature_upstream
        .as_deref()
        .map(hoist_serve::parse_base_url)
        .transpose()
        .context("--signature-upstream")?;
    config.info_url = args.info_url.clone();
    config.upstream_cloud = match args.upstream_cloud.as_str() {
        "" | "none" => None,
        cloud => Some(cloud.to_owned()),
    };
    config.trusted_load_balancers = args
        .trusted_load_balancers
        .iter()
        .map(|text| trusted_networks(text))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let mut regions = RegionMap::new();
    for path in &args.ip_ranges {
        regions.load(path)?;
    }
    config.regions = regions;
    config.mirrors = mirrors(args)?;
    anyhow::ensure!(
        args.blob_cache_size > 0,
        "--blob-cache-size must be positive"
    );
    config.blob_cache_capacity = args.blob_cache_size;
    Ok(config)
}

/// `any`, an address, or a CIDR.
fn trusted_networks(text: &str) -> anyhow::Result<Vec<IpNet>> {
    if text == "any" {
        return Ok(vec![
            "0.0.0.0/0".parse().context("0.0.0.0/0")?,
            "::/0".parse().context("::/0")?,
        ]);
    }
    if let Ok(address) = text.parse::<IpAddr>() {
        return Ok(vec![IpNet::from(address)]);
    }
    text.parse::<IpNet>()
        .map(|network| vec![network])
        .with_context(|| {
            format!("--trusted-load-balancer {text:?}: expected an IP address or CIDR (10.0.0.0/8)")
        })
}

fn mirrors(args: &ServeArgs) -> anyhow::Result<Mirrors> {
    let Some(path) = &args.backends.backends else {
        return Ok(Mirrors::none());
    };
    let catalogue = Catalogue::load(path)?;
    let selector = match &args.backends.select {
        Some(text) => Selector::parse(text)?,
        None => Selector::all(),
    };
    let selected: Vec<&Backend> = catalogue.select(&selector);
    anyhow::ensure!(
        !selected.is_empty(),
        "no backend of {} matches --select {}",
        path.display(),
        args.backends.select.as_deref().unwrap_or("")
    );
    Ok(Mirrors::new(&selected, args.default_backend.as_deref())?)
}
