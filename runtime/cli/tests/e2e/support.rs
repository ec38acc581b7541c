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

use std::sync::atomic::{AtomicU64, Ordering};

/// A `cairn` working on its own fresh table.
pub struct Dynamo {
    pub c: Cairn,
    pub table: String,
    pub endpoint: String,
}

impl Dynamo {
    pub fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let endpoint = std::env::var("CAIRN_TEST_DYNAMODB_ENDPOINT")
            .expect("CAIRN_TEST_DYNAMODB_ENDPOINT is not set: run the tests with scripts/test, which starts DynamoDB Local");
        let table = format!(
            "cairn-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let d = Self {
            c: Cairn::new(),
            table,
            endpoint,
        };
        let r = d.run(&["table", "create"]).ok();
        assert!(r.stdout.contains("created table"), "{r:?}");
        d
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.c.command();
        cmd.args(["--store", "dynamodb", "--table", &self.table])
            .args(args)
            .env("AWS_ENDPOINT_URL_DYNAMODB", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run cairn").into()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn history(&self, id: &str) -> Vec<serde_json::Value> {
        self.run(&["history", id, "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .clone()
    }
}

/// A `cairn` on one store or the other, for tests that run on both.
pub enum Env {
    /// The embedded SQLite store.
    Sqlite(Cairn),
    /// DynamoDB on the emulator.
    Dynamo(Dynamo),
}

impl Env {
    pub fn sqlite() -> Self {
        Env::Sqlite(Cairn::new())
    }

    pub fn dynamo() -> Self {
        Env::Dynamo(Dynamo::new())
    }

    pub fn run(&self, args: &[&str]) -> Run {
        match self {
            Env::Sqlite(c) => c.run(args),
            Env::Dynamo(d) => d.run(args),
        }
    }

    pub fn status(&self, id: &str) -> Value {
        self.run(&["status", id, "--json"]).ok().json()
    }

    pub fn history(&self, id: &str) -> Vec<Value> {
        self.run(&["history", id, "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .clone()
    }
}
