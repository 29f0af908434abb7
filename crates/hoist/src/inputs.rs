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

/// The edges of the manifests, or the errors that prevent computing them (invalid manifests,
/// conflicting promotions), sorted for output.
pub fn load_edges(inputs: &[Input]) -> Result<hoist_plan::EdgeSet, Vec<crate::report::Finding>> {
    use crate::report::Finding;
    let loaded = hoist_manifest::load(inputs);
    let mut errors: Vec<Finding> = loaded
        .diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity == hoist_manifest::Severity::Error)
        .map(Finding::from_diagnostic)
        .collect();
    let edges = hoist_plan::EdgeSet::compute(&loaded.manifests);
    for conflict in hoist_plan::find_conflicts(&edges) {
        errors.push(Finding::error("conflict", conflict.to_string()).at(&conflict.second.1));
    }
    if errors.is_empty() {
        Ok(edges)
    } else {
        crate::report::sort(&mut errors);
        Err(errors)
    }
}
