//! Progress of a promotion on stderr: indicatif bars (promotions, bytes) on a terminal, a plain line
//! every few seconds otherwise (CI logs keep every line, so bars would only fill them with noise).

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hoist_copy::{Progress, ProgressEvent};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed.
const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Put before every plain progress line (`shard 1/4: `), so the logs of a sharded job's pods
/// say whose progress they show.
static LABEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the label of this process's progress lines (once).
pub fn set_label(label: String) {
    let _ = LABEL.set(label);
}

/// The label of progress lines ("" when there is none).
pub fn label() -> &'static str {
    LABEL.get().map_or("", String::as_str)
}

/// Counts what the copies do and shows it.
#[derive(Debug)]
pub struct Reporter {
    counters: Arc<Counters>,
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Counters {
    images_done: AtomicU64,
    images_total: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
}

impl Reporter {
    /// Starts showing progress towards `images` images and `bytes` bytes; `quiet` shows nothing.
    /// Must be called inside the runtime (the plain-line ticker is a task).
    pub fn start(images: u64, bytes: u64, quiet: bool) -> Self {
        let counters = Arc::new(Counters::default());
        counters.images_total.store(images, Ordering::Relaxed);
        counters.bytes_total.store(bytes, Ordering::Relaxed);
        let mut reporter = Self {
            counters: counters.clone(),
            bars: None,
            ticker: None,
        };
        if quiet {
            return reporter;
        }
        if std::io::stderr().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let images_bar = multi.add(ProgressBar::new(images));
            images_bar.set_style(
                ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {elapsed}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            images_bar.set_prefix("promotions");
            let bytes_bar = multi.add(ProgressBar::new(bytes));
            bytes_bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bytes_bar.set_prefix("bytes");
            reporter.bars = Some((multi, images_bar, bytes_bar));
        } else {
            reporter.ticker = Some(tokio::spawn(async move {
                let mut interval = tokio::time::interval(LINE_INTERVAL);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    eprintln!("hoist: {}progress: {}", label(), counters.line());
                }
            }));
        }
        reporter
    }

    /// The hook the copiers call for every event.
    pub fn copy_progress(&self) -> Progress {
        let counters = self.counters.clone();
        let bytes_bar = self.bars.as_ref().map(|(_, _, bytes)| bytes.clone());
        Arc::new(move |event: &ProgressEvent| {
            if let ProgressEvent::BytesCopied { bytes, .. } = event {
                let done = counters.bytes_done.fetch_add(*bytes, Ordering::Relaxed) + bytes;
                // Attached signatures and attestations, found while copying, and retries are not
                // in the planned total: the total grows with them, so "done of total" never
                // claims more than everything.
                let total = counters
                    .bytes_total
                    .fetch_max(done, Ordering::Relaxed)
                    .max(done);
                if let Some(bar) = &bytes_bar {
                    bar.set_length(total);
                    bar.set_position(done);
                }
            }
        })
    }

    /// One image × destination finished (or failed).
    pub fn step_done(&self) {
        let done = self.counters.images_done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some((_, images, _)) = &self.bars {
            images.set_position(done);
        }
    }

    /// Stops the bars and the ticker, printing a last line in plain mode.
    pub fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
            eprintln!("hoist: {}progress: {}", label(), self.counters.line());
        }
        if let Some((_, images, bytes)) = self.bars {
            images.finish();
            bytes.finish();
        }
    }
}

impl Counters {
    fn line(&self) -> String {
        format!(
            "{}/{} promotions, {} of {} copied",
            self.images_done.load(Ordering::Relaxed),
            self.images_total.load(Ordering::Relaxed),
            indicatif::HumanBytes(self.bytes_done.load(Ordering::Relaxed)),
            indicatif::HumanBytes(self.bytes_total.load(Ordering::Relaxed)),
        )
    }
}

/// Progress of a phase counted in items (the inventory of thousands of repositories): a plain
/// line on stderr every few seconds while it lasts, nothing when it is short or `quiet`.
#[derive(Debug)]
pub struct PhaseProgress {
    counts: Arc<(AtomicU64, AtomicU64)>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    phase: &'static str,
    started: std::time::Instant,
}

impl PhaseProgress {
    /// Starts counting `phase` (`inventory: 5/20 repositories read`). Must be called inside the
    /// runtime.
    pub fn start(phase: &'static str, quiet: bool) -> Self {
        let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let ticker = (!quiet).then(|| {
            let counts = counts.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(LINE_INTERVAL);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    eprintln!("hoist: {}{}", label(), phase_line(phase, &counts));
                }
            })
        });
        Self {
            counts,
            ticker,
            phase,
            started: std::time::Instant::now(),
        }
    }

    /// The hook that counts: (done, total).
    pub fn callback(&self) -> Arc<dyn Fn(usize, usize) + Send + Sync> {
        let counts = self.counts.clone();
        Arc::new(move |done, total| {
            counts.0.store(done as u64, Ordering::Relaxed);
            counts.1.store(total as u64, Ordering::Relaxed);
        })
    }

    /// Stops the lines; a last one when the phase lasted long enough to print any.
    pub fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
            if self.started.elapsed() >= LINE_INTERVAL {
                eprintln!("hoist: {}{}", label(), phase_line(self.phase, &self.counts));
            }
        }
    }
}

fn phase_line(phase: &str, counts: &(AtomicU64, AtomicU64)) -> String {
    format!(
        "{phase}: {}/{} repositories read",
        counts.0.load(Ordering::Relaxed),
        counts.1.load(Ordering::Relaxed)
    )
}
