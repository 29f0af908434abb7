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
