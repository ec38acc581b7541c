//! Bad input: a clear message, a non-zero exit, nothing stored or lost.

use crate::support::*;

fn expect_error(c: &Cairn, args: &[&str], code: &str, words: &[&str]) {
    let r = c.run(args);
    assert_eq!(r.code, 2, "{args:?}: {r:?}");
    assert!(
        r.stderr.contains(code),
        "{args:?}: expected {code}: {}",
        r.stderr
    );
    for w in words {
        assert!(
            r.stderr.contains(w),
            "{args:?}: expected {w:?} in {}",
            r.stderr
        );
    }
}

fn file(c: &Cairn, name: &str, bytes: &[u8]) -> String {
    let p = c.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

fn no_executions(c: &Cairn) {
    let list = c.run(&["list", "--json"]).ok().json();
    assert_eq!(list, serde_json::json!([]), "nothing may be stored");
}

#[test]
fn files_that_are_not_cairn_components_are_refused() {
    let c = Cairn::new();
    let text = file(&c, "text.wasm", b"hello, this is not wasm");
    expect_error(
        &c,
        &["run", &text, "-w", "swap"],
        "CRN300",
        &["not WebAssembly"],
    );
    let module = file(&c, "module.wasm", b"\0asm\x01\0\0\0");
    expect_error(
        &c,
        &["run", &module, "-w", "swap"],
        "CRN300",
        &["core WebAssembly module", "wasm32-wasip2"],
    );
    let empty_component = file(&c, "empty.wasm", b"\0asm\x0d\0\x01\0");
    expect_error(
        &c,
        &["run", &empty_component, "-w", "swap"],
        "CRN301",
        &["does not export cairn:workflow/guest"],
    );
    let full = std::fs::read(SWAP_SAGA).unwrap();
    let truncated = file(&c, "truncated.wasm", &full[..full.len() / 2]);
    expect_error(
        &c,
        &["run", &truncated, "-w", "swap"],
        "CRN300",
        &["not a valid WebAssembly component"],
    );
    expect_error(&c, &["inspect", &text], "CRN300", &[]);
    let missing = c.path().join("missing.wasm").display().to_string();
    expect_error(
        &c,
        &["run", &missing, "-w", "swap"],
        "cannot read the component",
        &["missing.wasm"],
    );
    no_executions(&c);
}

#[test]
fn bad_names_and_bad_json_are_refused_before_anything_runs() {
    let c = Cairn::new();
    expect_error(
        &c,
        &["run", SWAP_SAGA, "-w", "nope", "-i", "{}"],
        "CRN400",
        &["no workflow named 'nope'", "swap"],
    );
    expect_error(
        &c,
        &["run", SWAP_SAGA, "-w", "swap", "-i", "{a: 1}"],
        "CRN401",
        &["not valid JSON"],
    );
    expect_error(
        &c,
        &[
            "run",
            SWAP_SAGA,
            "-w",
            "swap",
            "-i",
            "{}",
            "--id",
            "has space",
        ],
        "CRN401",
        &["whitespace"],
    );
    no_executions(&c);
}

#[test]
fn input_of_the_wrong_shape_fails_the_execution_with_the_reason() {
    let c = Cairn::new();
    let r = c.run(&[
        "run",
        SWAP_SAGA,
        "-w",
        "swap",
        "-i",
        r#"{"a": "alice"}"#,
        "--id",
        "shape",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let st = c.status("shape");
    let m = st["failure"]["message"].as_str().unwrap();
    assert!(
        m.contains("input of workflow 'swap'") && m.contains("missing field"),
        "{m}"
    );
}

#[test]
fn unknown_execution_ids_are_a_clear_error() {
    let c = Cairn::new();
    for args in [
        vec!["status", "ghost"],
        vec!["history", "ghost"],
        vec!["resume", "ghost"],
        vec!["signal", "ghost", "go", "1"],
        vec!["cancel", "ghost"],
    ] {
        expect_error(&c, &args, "CRN201", &["ghost", "cairn list"]);
    }
}

#[test]
fn a_file_that_is_not_a_store_is_refused_and_left_alone() {
    let c = Cairn::new();
    let junk = b"not a database, but precious data that must not be overwritten.....";
    let db = file(&c, "precious.db", junk);
    expect_error(&c, &["--db", &db, "list"], "CRN206", &["not a Cairn store"]);
    assert_eq!(std::fs::read(&db).unwrap(), junk);
}

#[test]
fn oversized_input_is_refused_naming_the_size() {
    let c = Cairn::new();
    let big = format!("\"{}\"", "x".repeat(5 << 20));
    let path = file(&c, "big.json", big.as_bytes());
    expect_error(
        &c,
        &["run", TESTKIT, "-w", "nap", "-i", &format!("@{path}")],
        "CRN204",
        &["bytes", "at most"],
    );
    no_executions(&c);
}

#[test]
fn remote_only_flags_and_local_only_commands_are_refused_where_they_cannot_work() {
    let c = Cairn::new();
    expect_error(
        &c,
        &[
            "start",
            TESTKIT,
            "-w",
            "collect",
            "-i",
            "1",
            "--wait-ms",
            "1000",
        ],
        "CRN401",
        &["--wait-ms is for --function"],
    );
    // Refused before any AWS call: `run` would execute the workflow here.
    expect_error(
        &c,
        &[
            "--function",
            "cairn",
            "run",
            TESTKIT,
            "-w",
            "collect",
            "-i",
            "1",
        ],
        "CRN401",
        &["not served through --function", "--store dynamodb"],
    );
    expect_error(
        &c,
        &["--function", "cairn", "start", TESTKIT, "-w", "collect"],
        "CRN401",
        &["registered component"],
    );
    expect_error(
        &c,
        &["list", "--updated-after", "yesterday"],
        "CRN401",
        &["RFC 3339"],
    );
    no_executions(&c);
}
