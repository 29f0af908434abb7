//! Blob mirrors on the command line: `--backends FILE --select …` to opened mirrors, and the
//! mirror part of `hoist promote` and `hoist mirror` (survey or fill, and how it is printed).

use anyhow::Context as _;
use hoist_copy::{Spool, SpoolOptions};
use hoist_object::{Catalogue, Selector};
use hoist_plan::{EdgeSet, Shard};
use hoist_promote::{Mirror, MirrorSummary, Problem, PromotedImage, Stores, mirrors};

use crate::cli::{BackendArgs, SpoolArgs};

/// The selected mirrors, opened with `options` (no request is made); `None` without
/// `--backends`. A broken catalogue, a bad selector or a selector matching nothing is a usage
/// error.
pub async fn open(
    args: &BackendArgs,
    options: &hoist_object::OpenOptions,
) -> anyhow::Result<Option<Vec<Mirror>>> {
    let Some(path) = &args.backends else {
        return Ok(None);
    };
    let catalogue = Catalogue::load(path)?;
    let selector = match &args.select {
        Some(text) => Selector::parse(text)?,
        None => Selector::all(),
    };
    let selected = catalogue.select(&selector);
    anyhow::ensure!(
        !selected.is_empty(),
        "no backend of {} matches --select {}",
        path.display(),
        args.select.as_deref().unwrap_or("")
    );
    let mut opened = Vec::new();
    for backend in selected {
        opened.push(
            Mirror::open_with(backend, options)
                .await
                .with_context(|| format!("cannot open backend {}", backend.name))?,
        );
    }
    Ok(Some(opened))
}

/// The mirror part of a run.
#[derive(Debug, Default, serde::Serialize)]
pub struct MirrorsReport {
    /// Whether blobs were written (`--confirm`) or only counted.
    pub executed: bool,
    /// Promoted images whose blobs go to the mirrors.
    pub images: usize,
    /// Blobs of all of them (distinct) and their bytes.
    pub blobs: u64,
    pub bytes: u64,
    /// Images that could not be read (so their blobs are unknown).
    pub problems: Vec<Problem>,
    /// Per mirror: what it lacks, or what was written.
    pub backends: Vec<MirrorSummary>,
}

impl MirrorsReport {
    /// Whether every blob of every image is (or, in a dry run, can be made) in every mirror.
    pub fn is_complete(&self) -> bool {
        self.problems.is_empty() && self.backends.iter().all(MirrorSummary::is_complete)
    }
}

impl MirrorsReport {
    /// The report of mirrors filled by an execution (`backends`: its `mirrors`).
    pub fn filled(
        images: &[PromotedImage],
        problems: Vec<Problem>,
        backends: Vec<MirrorSummary>,
    ) -> Self {
        let (blobs, bytes) = backends
            .first()
            .map_or((0, 0), |summary| (summary.blobs, summary.bytes));
        Self {
            executed: true,
            images: images.len(),
            blobs,
            bytes,
            problems,
            backends,
        }
    }
}

/// The dry run: what every mirror lacks of the blobs of every image the edges promote; with a
/// `shard`, of the blobs it owns (every image is still read: any of them may hold one).
pub async fn survey(
    edges: &EdgeSet,
    stores: &Stores,
    opened: &[Mirror],
    concurrency: usize,
    shard: Option<&Shard>,
) -> MirrorsReport {
    let (mut images, problems) = hoist_promote::read_images(edges, stores, concurrency).await;
    if let Some(shard) = shard {
        keep_owned_blobs(&mut images, shard);
    }
    let per_mirror = futures::future::join_all(
        opened
            .iter()
            .map(|mirror| mirrors::survey(&images, mirror, concurrency)),
    )
    .await;
    let (blobs, bytes) = per_mirror
        .first()
        .map_or((0, 0), |summary| (summary.blobs, summary.bytes));
    MirrorsReport {
        executed: false,
        images: images.len(),
        blobs,
        bytes,
        problems,
        backends: per_mirror,
    }
}

/// The run's spool, from `--spool-dir` and `--spool-size`; a missing directory is a usage error.
/// The `jobs` images moving at once share `3 x jobs` blob streams, however many destinations
/// and mirrors each fans out to. Each upload in flight holds about 0.65 MiB (a read chunk, and
/// what the HTTP client queues behind it), so this bounds the memory of a run; measured with 3
/// registries + 3 mirrors, 60 MB layers and a 2 GiB blob, `--jobs 8`: peak RSS 45 MiB with 16
/// streams, 54 MiB with 24, 57-61 MiB with 32, 75 MiB unbounded. Over a 40 ms link 24 streams
/// are within 5% of unbounded.
pub fn open_spool(args: &SpoolArgs, jobs: usize) -> anyhow::Result<Spool> {
    let mut options = SpoolOptions {
        capacity: args.spool_size,
        streams: jobs.max(1) * 3,
        ..SpoolOptions::default()
    };
    if let Some(directory) = &args.spool_dir {
        options.directory = directory.clone();
    }
    Spool::new(options).context("--spool-dir")
}

/// Keeps, of every image, the blobs `shard` owns, and the images left with any.
pub fn keep_owned_blobs(images: &mut Vec<PromotedImage>, shard: &Shard) {
    for image in images.iter_mut() {
        image
            .measured
            .blobs
            .retain(|(digest, _)| shard.owns_blob(digest));
    }
    images.retain(|image| !image.measured.blobs.is_empty());
}

/// The text form: one line per mirror, then every failure.
pub fn print_text(out: &mut impl std::io::Write, report: &MirrorsReport) -> std::io::Result<()> {
    writeln!(
        out,
        "\nmirrors: {} digest(s), {} distinct blob(s) ({}) for each of {} mirror(s)",
        report.images,
        report.blobs,
        indicatif::HumanBytes(report.bytes),
        report.backends.len()
    )?;
    for summary in &report.backends {
        let verb = if report.executed {
            "written"
        } else {
            "to write"
        };
        writeln!(
            out,
            "  {} ({}): {} blob(s) {verb} ({}), {} already there{}",
            summary.name,
            summary.url,
            summary.to_write,
            indicatif::HumanBytes(summary.bytes_to_write),
            summary.present,
            if summary.failures.is_empty() {
                String::new()
            } else {
                format!(", {} failed", summary.failures.len())
            }
        )?;
        for failure in &summary.failures {
            writeln!(
                out,
                "    error: {} (of {}): {}",
                failure.digest, failure.image, failure.error
            )?;
        }
    }
    for problem in &report.problems {
        writeln!(out, "  error: {problem}")?;
    }
    Ok(())
}
