//! Where policies come from: `--policies DIR`, or the files shipped inside the binary.

use std::path::Path;

use hoist_policy::{PolicyError, PolicySet};

include!(concat!(env!("OUT_DIR"), "/policies.rs"));

/// Loads `dir`, or the embedded policies when `dir` is `None`.
pub fn load(dir: Option<&Path>) -> Result<PolicySet, Vec<PolicyError>> {
    match dir {
        Some(dir) => PolicySet::load_dir(dir),
        None => {
            let mut set = PolicySet::empty();
            let mut errors = Vec::new();
            for (name, text) in EMBEDDED_POLICIES {
                match PolicySet::from_str(name, text) {
                    Ok(one) => set.merge(one),
                    Err(mut more) => errors.append(&mut more),
                }
            }
            if errors.is_empty() {
                Ok(set)
            } else {
                Err(errors)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_freeze_policy_is_embedded() {
        let set = super::load(None).expect("embedded policies load");
        assert!(
            set.files().iter().any(|f| f == "k8s-gcr-io-freeze.yaml"),
            "{:?}",
            set.files()
        );
    }
}
