//! The published crate: `cargo package --list` ships the library's sources, the README (the
//! crate compiles it as doc tests through `include_str!`, so it must travel with them), both
//! licenses and the changelog, and nothing of the workspace's tests, benches, scripts or
//! reports. CI (`.ci/run`) runs `cargo package -p https-pool`, which also builds the packaged
//! crate on its own; this test keeps the list honest under `cargo test`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every `.rs` file under `dir`, relative to `root`, with `/` separators.
fn rust_files(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under the root");
            out.insert(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
    }
}

/// The package holds exactly the library sources plus README, licenses, changelog and the
/// files cargo adds itself.
#[test]
fn the_package_ships_the_library_its_readme_licenses_and_changelog() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "package",
            "-p",
            "https-pool",
            "--list",
            "--allow-dirty",
            "--offline",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo package --list failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();

    let mut expected = BTreeSet::new();
    rust_files(&root, &root.join("src"), &mut expected);
    for file in [
        "README.md",
        "CHANGELOG.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "Cargo.toml",
        "Cargo.toml.orig",
        "Cargo.lock",
    ] {
        assert!(
            root.join(file.trim_end_matches(".orig")).is_file(),
            "{file}"
        );
        expected.insert(file.to_owned());
    }
    // Written by cargo when the tree is a git checkout.
    let listed: BTreeSet<String> = listed
        .into_iter()
        .filter(|f| f != ".cargo_vcs_info.json")
        .collect();
    assert_eq!(
        listed, expected,
        "the package lists other files than the library's"
    );
}

/// The licenses the manifest names are the texts shipped.
#[test]
fn the_license_files_match_the_manifest() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(env!("CARGO_PKG_LICENSE"), "MIT OR Apache-2.0");
    let mit = std::fs::read_to_string(root.join("LICENSE-MIT")).expect("LICENSE-MIT");
    assert!(mit.contains("Permission is hereby granted, free of charge"));
    let apache = std::fs::read_to_string(root.join("LICENSE-APACHE")).expect("LICENSE-APACHE");
    assert!(apache.contains("Apache License") && apache.contains("Version 2.0, January 2004"));
}
