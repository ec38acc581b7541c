//! Compiles the guest crates with a nested cargo and writes their paths.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cargo_build(root: &Path, target_dir: &Path, packages: &[&str], features: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--profile",
            "guest",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    for f in features {
        cmd.args(["--features", f]);
    }
    // The outer build's settings are for the host, not for the guests,
    // except the workspace wrapper: under scripts/lib.sh it is
    // clippy-driver with `-D warnings` (CLIPPY_ARGS), so the guest crates
    // are linted as they compile here and need no second clippy pass.
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "RUSTFLAGS" || k == "RUSTC_WRAPPER"
        {
            cmd.env_remove(&k);
        }
    }
    let status = cmd.status().expect("run cargo for the guests");
    assert!(
        status.success(),
        "building the guest components failed (the errors or clippy lints are above); is the wasm32-wasip2 target installed? (rustup target add wasm32-wasip2)"
    );
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target_dir = root.join("target").join("guests");
    for dir in ["guest-sdk", "examples", "tests/guests", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    // A build with the lints (scripts/lib.sh) after one without re-runs.
    println!("cargo:rerun-if-env-changed=RUSTC_WORKSPACE_WRAPPER");
    println!("cargo:rerun-if-env-changed=CLIPPY_ARGS");
    let wasm = target_dir.join("wasm32-wasip2").join("guest");
    cargo_build(
        &root,
        &target_dir,
        &[
            "swap-saga",
            "hello",
            "background-check",
            "provision",
            "cairn-testkit",
            "cairn-httpkit",
            "dynamodb-activity",
        ],
        &[],
    );
    let mut consts = String::new();
    for (name, file) in [
        ("SWAP_SAGA", "swap_saga"),
        ("HELLO", "hello"),
        ("BACKGROUND_CHECK", "background_check"),
        ("PROVISION", "provision"),
        ("TESTKIT", "cairn_testkit"),
        ("HTTPKIT", "cairn_httpkit"),
        ("DYNAMODB_ACTIVITY", "dynamodb_activity"),
    ] {
        let dest = out.join(format!("{file}.wasm"));
        std::fs::copy(wasm.join(format!("{file}.wasm")), &dest).expect("copy guest");
        consts.push_str(&format!(
            "/// `{file}.wasm`.\npub const {name}: &str = {:?};\n",
            dest.display().to_string()
        ));
    }
    // The same testkit with `ordered` changed: for nondeterminism tests.
    cargo_build(
        &root,
        &target_dir,
        &["cairn-testkit"],
        &["cairn-testkit/changed"],
    );
    let dest = out.join("cairn_testkit_changed.wasm");
    std::fs::copy(wasm.join("cairn_testkit.wasm"), &dest).expect("copy guest");
    consts.push_str(&format!("/// `cairn_testkit.wasm` built with `--features changed`.\npub const TESTKIT_CHANGED: &str = {:?};\n", dest.display().to_string()));
    // And a compatible change: a log line after the last step.
    cargo_build(
        &root,
        &target_dir,
        &["cairn-testkit"],
        &["cairn-testkit/logged"],
    );
    let dest = out.join("cairn_testkit_logged.wasm");
    std::fs::copy(wasm.join("cairn_testkit.wasm"), &dest).expect("copy guest");
    consts.push_str(&format!("/// `cairn_testkit.wasm` built with `--features logged`.\npub const TESTKIT_LOGGED: &str = {:?};\n", dest.display().to_string()));
    std::fs::write(out.join("artifacts.rs"), consts).unwrap();
}
