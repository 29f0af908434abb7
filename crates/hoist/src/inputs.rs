//! Turning manifest flags into [`hoist_manifest::Input`]s.

use hoist_manifest::Input;

use crate::cli::ManifestArgs;

/// The inputs named on the command line: thin directories first, then plain manifests, each in
/// the order given. At least one is required.
pub fn from_args(args: &ManifestArgs) -> anyhow::Result<Vec<Input>> {
    let inputs: Vec<Input> = args
        .thin_manifest_dirs
        .iter()
        .cloned()
        .map(Input::Thin)
        .chain(args.manifests.iter().cloned().map(Input::Plain))
        .collect();
    anyhow::ensure!(
        !inputs.is_empty(),
        "name at least one --thin-manifest-dir DIR or --manifest FILE"
    );
    Ok(inputs)
}

/// Whether no image manifest is named (commands that also read file manifests then read only
/// those).
pub fn is_empty(args: &ManifestArgs) -> bool {
    args.thin_manifest_dirs.is_empty() && args.manifests.is_empty()
}

/// The edges of the manifests, bounded by [`hoist_plan::MAX_EDGES`]: beyond it, no edges and
/// the error that says so (a manifest from a pull request must not exhaust the machine).
pub fn compute_edges(
    loaded: &hoist_manifest::Loaded,
) -> (hoist_plan::EdgeSet, Option<crate::report::Finding>) {
    match hoist_plan::EdgeSet::try_compute(&loaded.manifests, hoist_plan::MAX_EDGES) {
        Ok(edges) => (edges, None),
        Err(error) => (
            hoist_plan::EdgeSet::default(),
            Some(crate::report::Finding::error("limit", error.to_string())),
        ),
    }
}
