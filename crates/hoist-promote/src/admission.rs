//! Per-project isolation in a plan: which projects (promoter manifests) each [`Problem`] concerns,
//! and the plan that remains when some projects are refused.
//!
//! A step is one (destination, digest); several manifests may want it (nested registry names,
//! shared images). A problem refuses every manifest whose edges make it: a tag move the
//! manifests wanting that tag there, a lost digest those promoting it from that source, a policy
//! refusal those writing that digest there, an unreadable repository those reading or writing
//! it. [`admit`] then keeps, of each step, what the admitted manifests want: a step only refused
//! manifests want is dropped, a shared step keeps only the tags an admitted manifest wants. What
//! a refused project wants is therefore never written, and every other project is promoted.
//! Pure: no I/O.

use std::collections::{BTreeSet, HashMap};

use hoist_oci::{Digest, RegistryName, RepositoryPath};
use hoist_plan::EdgeSet;
use hoist_plan::edges::DestinationId;

use crate::plan::{Action, Plan, Problem, Step};

/// The edges of a run, indexed for attribution.
struct Index<'a> {
    edges: &'a EdgeSet,
    destinations: HashMap<(&'a RegistryName, &'a RepositoryPath), DestinationId>,
    /// Edge indexes by (destination, digest).
    by_step: HashMap<(DestinationId, Digest), Vec<u32>>,
}

impl<'a> Index<'a> {
    fn new(edges: &'a EdgeSet) -> Self {
        let destinations = edges
            .destinations
            .iter()
            .enumerate()
            .map(|(id, destination)| {
                (
                    (&destination.registry, &destination.image),
                    id as DestinationId,
                )
            })
            .collect();
        let mut by_step: HashMap<(DestinationId, Digest), Vec<u32>> = HashMap::new();
        for (index, edge) in edges.edges.iter().enumerate() {
            let digest = edges.origins[edge.origin as usize].digest;
            by_step
                .entry((edge.destination, digest))
                .or_default()
                .push(index as u32);
        }
        Self {
            edges,
            destinations,
            by_step,
        }
    }

    fn destination(
        &self,
        registry: &RegistryName,
        image: &RepositoryPath,
    ) -> Option<DestinationId> {
        self.destinations.get(&(registry, image)).copied()
    }

    /// The edges of one step.
    fn step(&self, registry: &RegistryName, image: &RepositoryPath, digest: Digest) -> &[u32] {
        self.destination(registry, image)
            .and_then(|destination| self.by_step.get(&(destination, digest)))
            .map_or(&[], Vec::as_slice)
    }

    fn manifest(&self, edge: u32) -> u32 {
        let edge = &self.edges.edges[edge as usize];
        self.edges.origins[edge.origin as usize].manifest
    }

    /// Manifests of every edge at a destination.
    fn at_destination(&self, registry: &RegistryName, image: &RepositoryPath) -> BTreeSet<u32> {
        let Some(destination) = self.destination(registry, image) else {
            return BTreeSet::new();
        };
        self.by_step
            .iter()
            .filter(|((id, _), _)| *id == destination)
            .flat_map(|(_, edges)| edges.iter().map(|&edge| self.manifest(edge)))
            .collect()
    }

    /// Manifests promoting from a source repository (optionally only one digest).
    fn promoting_from(
        &self,
        registry: &RegistryName,
        image: &RepositoryPath,
        digest: Option<Digest>,
    ) -> BTreeSet<u32> {
        self.edges
            .origins
            .iter()
            .filter(|origin| {
                &origin.source == registry
                    && &origin.image == image
                    && digest.is_none_or(|digest| origin.digest == digest)
            })
            .map(|origin| origin.manifest)
            .collect()
    }
}

/// For each problem (in order), the manifests (indexes of the edges' origins' manifests) it
/// concerns.
pub fn problem_manifests(problems: &[Problem], edges: &EdgeSet) -> Vec<BTreeSet<u32>> {
    if problems.is_empty() {
        return Vec::new();
    }
    let index = Index::new(edges);
    problems
        .iter()
        .map(|problem| match problem {
            Problem::TagMove {
                registry,
                image,
                tag,
                wanted,
                ..
            } => index
                .step(registry, image, *wanted)
                .iter()
                .filter(|&&edge| edges.tag(&edges.edges[edge as usize]) == Some(tag))
                .map(|&edge| index.manifest(edge))
                .collect(),
            Problem::Lost {
                registry,
                image,
                digest,
                ..
            } => index.promoting_from(registry, image, Some(*digest)),
            Problem::Refused {
                registry,
                image,
                digest,
                ..
            } => index
                .step(registry, image, *digest)
                .iter()
                .map(|&edge| index.manifest(edge))
                .collect(),
            Problem::Unreadable {
                registry, image, ..
            } => {
                let mut manifests = index.at_destination(registry, image);
                manifests.extend(index.promoting_from(registry, image, None));
                manifests
            }
        })
        .collect()
}

/// The plan without what the `refused` manifests want: the steps only they want are dropped; a
/// step another manifest wants too keeps only that manifest's tags (and is skipped when nothing
/// is left to write). The problems are left out: what remains is what may run.
pub fn admit(plan: &Plan, edges: &EdgeSet, refused: &BTreeSet<u32>) -> Plan {
    if refused.is_empty() {
        return Plan {
            steps: plan.steps.clone(),
            problems: Vec::new(),
        };
    }
    let index = Index::new(edges);
    let mut steps = Vec::with_capacity(plan.steps.len());
    for step in &plan.steps {
        let admitted: Vec<u32> = index
            .step(&step.registry, &step.image, step.digest)
            .iter()
            .copied()
            .filter(|&edge| !refused.contains(&index.manifest(edge)))
            .collect();
        if admitted.is_empty() {
            continue;
        }
        let wanted: BTreeSet<&hoist_oci::Tag> = admitted
            .iter()
            .filter_map(|&edge| edges.tag(&edges.edges[edge as usize]))
            .collect();
        let mut kept = Step {
            tags: step
                .tags
                .iter()
                .filter(|tag| wanted.contains(tag))
                .cloned()
                .collect(),
            ..step.clone()
        };
        if kept.action == Action::Tag && kept.tags.is_empty() {
            kept.action = Action::Skip;
        }
        steps.push(kept);
    }
    Plan {
        steps,
        problems: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use hoist_manifest::{DigestTags, Image, Location, Manifest, Registry};
    use hoist_oci::Tag;

    use super::*;
    use crate::plan::SourceImage;

    fn location(file: &str) -> Location {
        Location {
            file: Arc::from(Path::new(file)),
            line: 1,
            column: 1,
        }
    }

    fn digest(byte: u8) -> Digest {
        Digest::from_sha256([byte; 32])
    }

    /// A manifest promoting `image` from gcr.io/`source` to r.io/prod, `digest` with `tags`.
    fn manifest(source: &str, image: &str, digest: Digest, tags: &[&str]) -> Manifest {
        let file: Arc<Path> = Arc::from(Path::new(source));
        let registry = |name: &str, src| Registry {
            name: RegistryName::parse(name).unwrap(),
            src,
            service_account: None,
            location: location(source),
        };
        Manifest {
            manifest_file: file.clone(),
            images_file: file,
            project: None,
            registries: vec![
                registry(&format!("gcr.io/{source}"), true),
                registry("r.io/prod", false),
            ],
            images: vec![Image {
                name: RepositoryPath::parse(image).unwrap(),
                dmap: vec![DigestTags {
                    digest,
                    tags: tags.iter().map(|tag| Tag::parse(tag).unwrap()).collect(),
                    location: location(source),
                }],
                location: location(source),
            }],
        }
    }

    fn step(image: &str, digest: Digest, action: Action, tags: &[&str]) -> Step {
        Step {
            registry: RegistryName::parse("r.io/prod").unwrap(),
            image: RepositoryPath::parse(image).unwrap(),
            digest,
            action,
            tags: tags.iter().map(|tag| Tag::parse(tag).unwrap()).collect(),
            tags_present: Vec::new(),
            source: SourceImage {
                registry: RegistryName::parse("gcr.io/a").unwrap(),
                image: RepositoryPath::parse(image).unwrap(),
            },
            size: None,
            location: String::new().into(),
        }
    }

    #[test]
    fn a_refused_project_loses_its_steps_and_its_tags_on_shared_steps() {
        let edges = EdgeSet::compute(&[
            manifest("a", "app", digest(1), &["v1"]),
            manifest("b", "app", digest(1), &["stable"]),
            manifest("b", "other", digest(2), &["v2"]),
        ]);
        let plan = Plan {
            steps: vec![
                step("app", digest(1), Action::Tag, &["stable", "v1"]),
                step("other", digest(2), Action::Copy, &["v2"]),
            ],
            problems: vec![Problem::Refused {
                registry: RegistryName::parse("r.io/prod").unwrap(),
                image: RepositoryPath::parse("other").unwrap(),
                digest: digest(2),
                rule: "p.yaml: freezes[0]".into(),
                reason: "frozen".into(),
            }],
        };
        let owners = problem_manifests(&plan.problems, &edges);
        assert_eq!(owners, vec![BTreeSet::from([2])]);
        // Manifests 1 and 2 are one project (b): refusing it keeps only a's tag.
        let admitted = admit(&plan, &edges, &BTreeSet::from([1, 2]));
        assert!(admitted.problems.is_empty());
        assert_eq!(admitted.steps.len(), 1);
        assert_eq!(admitted.steps[0].tags, vec![Tag::parse("v1").unwrap()]);
        assert_eq!(admitted.steps[0].action, Action::Tag);
        // Refusing a instead: its only tag gone, nothing left to write for app... but b's tag.
        let admitted = admit(&plan, &edges, &BTreeSet::from([0]));
        assert_eq!(admitted.steps.len(), 2);
        assert_eq!(admitted.steps[0].tags, vec![Tag::parse("stable").unwrap()]);
        // Refusing everything leaves nothing.
        assert!(
            admit(&plan, &edges, &BTreeSet::from([0, 1, 2]))
                .steps
                .is_empty()
        );
    }
}
