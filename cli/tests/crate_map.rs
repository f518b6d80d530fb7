//! The README's crate table against the workspace's manifests: each crate's row names
//! exactly its dependencies on other Systole crates, and every outside crate a row names is
//! a dependency of that crate; every dependency version is declared once, in the workspace;
//! and the charts (`reports`, `sweep`) compile no hardware toolchain.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The `[dependencies]` table of a member's manifest.
fn dependencies(member: &str) -> toml::Table {
    let text = std::fs::read_to_string(repo().join(member).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    manifest.get("dependencies").and_then(|d| d.as_table()).cloned().unwrap_or_default()
}

#[test]
fn the_readme_crate_table_matches_the_manifests() {
    let workspace: toml::Table = toml::from_str(&std::fs::read_to_string(repo().join("Cargo.toml")).unwrap()).unwrap();
    let members: Vec<String> =
        workspace["workspace"]["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let table = readme.split("## Crates").nth(1).unwrap().split("\n\n").nth(1).unwrap();
    let mut rows = BTreeSet::new();
    for line in table.lines().skip(2) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
        assert_eq!(cells.len(), 3, "{line}");
        let name = cells[0].split('`').nth(1).unwrap();
        assert!(members.iter().any(|m| m == name), "README row `{name}` is not a workspace member");
        rows.insert(name.to_string());
        let deps = dependencies(name);
        let listed: Vec<&str> = cells[2].split(", ").map(|d| d.split(" (").next().unwrap().trim()).collect();
        let internal_listed: BTreeSet<&str> = listed.iter().copied().filter(|d| members.iter().any(|m| m == d)).collect();
        let internal_actual: BTreeSet<&str> =
            deps.keys().filter_map(|k| k.strip_prefix("systole-")).filter(|d| members.iter().any(|m| m == d)).collect();
        assert_eq!(internal_listed, internal_actual, "README's row for `{name}` against {name}/Cargo.toml");
        for outside in listed.iter().filter(|d| !internal_listed.contains(*d)) {
            assert!(deps.contains_key(*outside), "README's row for `{name}` names `{outside}`, which {name}/Cargo.toml does not depend on");
        }
    }
    let unlisted: Vec<&String> = members.iter().filter(|m| !rows.contains(*m)).collect();
    assert!(unlisted.is_empty(), "members without a README row: {unlisted:?}");
    // Every version is the workspace's: members say `workspace = true`.
    for member in &members {
        let text = std::fs::read_to_string(repo().join(member).join("Cargo.toml")).unwrap();
        let manifest: toml::Table = toml::from_str(&text).unwrap();
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            for (dep, spec) in manifest.get(section).and_then(|d| d.as_table()).into_iter().flatten() {
                let inherited = spec.as_table().and_then(|t| t.get("workspace")).and_then(|w| w.as_bool()) == Some(true);
                assert!(
                    inherited,
                    "{member}/Cargo.toml [{section}] `{dep}` declares its own version; declare it in [workspace.dependencies]"
                );
            }
        }
    }
}

/// The Systole crates `member` depends on, directly or through others.
fn closure(member: &str, members: &[String]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![member.to_string()];
    while let Some(m) = todo.pop() {
        for dep in dependencies(&m).keys().filter_map(|k| k.strip_prefix("systole-")) {
            if members.iter().any(|x| x == dep) && seen.insert(dep.to_string()) {
                todo.push(dep.to_string());
            }
        }
    }
    seen
}

#[test]
fn the_charts_compile_no_hardware_toolchain() {
    let workspace: toml::Table = toml::from_str(&std::fs::read_to_string(repo().join("Cargo.toml")).unwrap()).unwrap();
    let members: Vec<String> =
        workspace["workspace"]["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
    for chart in ["reports", "sweep"] {
        let mut crates = closure(chart, &members);
        crates.insert(chart.to_string());
        assert!(!crates.contains("hdl") && !crates.contains("fpga"), "{chart} depends on {crates:?}");
        for c in &crates {
            assert!(!dependencies(c).contains_key("rust-hdl"), "{chart} reaches rust-hdl through {c}");
        }
    }
}
