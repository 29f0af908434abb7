//! Policy files from a hostile pull request: a pattern cannot escape its anchors, patterns and
//! values are echoed short, and no input makes loading panic or take long.

use std::time::{Duration, Instant};

use hoist_policy::{PolicyError, PolicySet};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

fn allow(pattern: &str) -> String {
    format!("allow:\n- kind: tag-move\n  match: '{pattern}'\n  explanation: test\n")
}

#[test]
fn an_allow_pattern_cannot_escape_its_anchors() {
    // Wrapped as `^(?:a)|(b)$` this would compile and allow any reference containing "b"; it
    // must be refused because it does not compile on its own.
    for pattern in ["a)|(b", "x)|.*|(y", ")(", "a)(?:b"] {
        let errors = PolicySet::from_str("allow.yaml", &allow(pattern))
            .map(|_| ())
            .expect_err(pattern);
        assert!(
            matches!(errors.as_slice(), [PolicyError::Regex { .. }]),
            "{pattern}: {errors:?}"
        );
    }
    // A well-formed alternation stays inside the anchors.
    let set = PolicySet::from_str("allow.yaml", &allow("r.io/a:v1|r.io/b:v1")).unwrap();
    assert!(set.allows_tag_move("r.io/a:v1").is_some());
    assert!(set.allows_tag_move("r.io/b:v1").is_some());
    assert!(set.allows_tag_move("evil/r.io/a:v1").is_none());
    assert!(set.allows_tag_move("r.io/b:v1-evil").is_none());
}

#[test]
fn huge_patterns_are_refused_and_echoed_short() {
    let huge = format!("{}{}", "(a{1000}){1000}", "x".repeat(5_000));
    let errors = PolicySet::from_str(
        "block.yaml",
        &format!("blockades:\n- blockregexps: ['{huge}']\n  explanation: x\n"),
    )
    .map(|_| ())
    .unwrap_err();
    let shown = errors[0].to_string();
    assert!(shown.len() < 600, "{} bytes: {shown:.400}", shown.len());
    assert!(shown.contains("invalid regular expression"), "{shown}");
    let deep = format!("{}a{}", "(".repeat(500), ")".repeat(500));
    let errors = PolicySet::from_str("allow.yaml", &allow(&deep))
        .map(|_| ())
        .unwrap_err();
    assert!(errors[0].to_string().len() < 600);
    let long_key = "k".repeat(1_000);
    let errors = PolicySet::from_str("x.yaml", &format!("{long_key}: 1\n"))
        .map(|_| ())
        .unwrap_err();
    assert!(errors[0].to_string().len() < 600, "{}", errors[0]);
}

#[test]
fn mutated_policies_never_crash_the_loader() {
    let seed = std::fs::read_to_string(crate::repo_root().join("policies/k8s-gcr-io-freeze.yaml"))
        .unwrap();
    let alphabet = b"[]{}:-,'\"&*!|>#%@?\n\t \\~()^$.+0123456789az";
    let mut rng = StdRng::seed_from_u64(0x5eed_0108);
    let mut slowest = Duration::ZERO;
    for _ in 0..1_000 {
        let mut bytes = seed.clone().into_bytes();
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..=bytes.len());
            match rng.random_range(0..4) {
                0 => {
                    let end = (at + rng.random_range(0..40)).min(bytes.len());
                    bytes.drain(at..end);
                }
                1 => {
                    let depth = rng.random_range(1..100);
                    bytes.splice(at..at, "[".repeat(depth).into_bytes());
                }
                _ => bytes.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let started = Instant::now();
        let result = std::panic::catch_unwind(|| PolicySet::from_str("p.yaml", &text).map(|_| ()));
        slowest = slowest.max(started.elapsed());
        match result {
            Ok(Ok(())) => {}
            Ok(Err(errors)) => assert!(errors.iter().all(|e| e.to_string().len() < 2_000)),
            Err(_) => panic!("loading panicked on {text:?}"),
        }
    }
    assert!(slowest < Duration::from_secs(5), "slowest {slowest:?}");
}
