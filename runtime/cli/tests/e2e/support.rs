//! Running `cairn` against a private store in a temp dir.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use cairn_test_artifacts::{SWAP_SAGA, TESTKIT, TESTKIT_CHANGED};

pub const SWAP_OK: &str =
    r#"{"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": null}"#;

pub fn swap_failing_at(step: u8) -> String {
    format!(r#"{{"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": {step}}}"#)
}

/// A private working directory with its own store and cache.
pub struct Cairn {
    pub dir: tempfile::TempDir,
}

/// What a `cairn` invocation did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Cairn {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cairn"));
        c.current_dir(self.dir.path())
            .env_remove("CAIRN_DB")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.command()
            .args(args)
            .output()
            .expect("run cairn")
            .into()
    }

    /// A subdirectory granted to activities as `/trace`.
    pub fn trace_dir(&self) -> PathBuf {
        let d = self.dir.path().join("trace");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub fn history(&self, id: &str) -> Vec<Value> {
        let v = self.run(&["history", id, "--json"]).ok().json();
        v.as_array().expect("history --json is an array").clone()
    }

    pub fn status(&self, id: &str) -> Value {
        self.run(&["status", id, "--json"]).ok().json()
    }
}

/// Journal indexes are 0..n, each once.
#[track_caller]
pub fn assert_contiguous(history: &[Value]) {
    let idx: Vec<u64> = history
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (0..idx.len() as u64).collect();
    assert_eq!(
        idx, expected,
        "journal indexes must be contiguous and unique"
    );
}

/// (kind, name) of each entry.
pub fn kinds(history: &[Value]) -> Vec<(String, String)> {
    history
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}
