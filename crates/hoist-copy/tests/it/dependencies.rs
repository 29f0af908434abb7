//! hoist-copy drives any store through the hoist-store traits, so it must not depend on a backend.

#[test]
fn depends_on_no_concrete_store() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] table");
    let ours: Vec<&str> = dependencies
        .lines()
        .filter_map(|line| line.split(['.', '=', ' ']).next())
        .filter(|name| name.starts_with("hoist-"))
        .collect();
    assert_eq!(
        ours,
        ["hoist-oci", "hoist-store"],
        "only the model and the store contract"
    );
}
