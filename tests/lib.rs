//! Support for Cairn's cross-crate tests: stores to run the engine on (SQLite
//! in a temp dir, DynamoDB on the emulator scripts/test starts), an engine
//! with the test components, and [`fault::FaultStore`], a store wrapper
//! that injects errors, conflicts and concurrent deliveries on chosen calls.

pub mod fault;

use cairn_core::{Payload, Store};
use cairn_engine::{Engine, EngineConfig, StartRequest, SystemClock};
use cairn_host::{ComponentBytes, LoadedComponent, Sandbox, SandboxConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The embedded SQLite store.
    Sqlite,
    /// DynamoDB (DynamoDB Local).
    Dynamodb,
}

/// A store and what keeps it alive.
pub struct TestStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The DynamoDB table (for another process's store on it).
    pub table: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

/// The SDK configuration of DynamoDB Local (started by scripts/test).
pub async fn dynamodb_sdk() -> aws_config::SdkConfig {
    let endpoint = std::env::var("CAIRN_TEST_DYNAMODB_ENDPOINT").expect(
        "CAIRN_TEST_DYNAMODB_ENDPOINT is not set: run the tests with scripts/test, which starts DynamoDB Local",
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await
}

/// A fresh store of `kind`.
pub async fn store(kind: Kind) -> TestStore {
    match kind {
        Kind::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = cairn_store_sqlite::SqliteStore::open(dir.path().join("cairn.db"))
                .expect("open sqlite");
            TestStore {
                store: Arc::new(store),
                table: None,
                _dir: Some(dir),
            }
        }
        Kind::Dynamodb => {
            static N: AtomicU64 = AtomicU64::new(0);
            let sdk = dynamodb_sdk().await;
            let table = format!(
                "cairn-engine-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let store = cairn_store_dynamodb::DynamoStore::from_sdk_config(&sdk, &table);
            cairn_store_dynamodb::create_table(store.client(), store.table())
                .await
                .expect("create table");
            TestStore {
                store: Arc::new(store),
                table: Some(table),
                _dir: None,
            }
        }
    }
}

/// An engine over `store` with the testkit and swap-saga components added.
pub async fn engine(store: Arc<dyn Store>) -> (Engine, Arc<LoadedComponent>, Arc<LoadedComponent>) {
    engine_with(store, SandboxConfig::default()).await
}

/// Like [`engine`], with a sandbox configured from `config` (the shared
/// component cache is filled in).
pub async fn engine_with(
    store: Arc<dyn Store>,
    config: SandboxConfig,
) -> (Engine, Arc<LoadedComponent>, Arc<LoadedComponent>) {
    let cache = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-cache");
    let sandbox = Arc::new(
        Sandbox::new(SandboxConfig {
            cache_dir: Some(cache),
            ..config
        })
        .expect("sandbox"),
    );
    let engine = Engine::new(
        sandbox,
        store,
        Arc::new(SystemClock),
        EngineConfig::default(),
    );
    let testkit = engine
        .add_component(ComponentBytes::new(
            std::fs::read(cairn_test_artifacts::TESTKIT).expect("testkit"),
        ))
        .await
        .expect("add testkit");
    let swap = engine
        .add_component(ComponentBytes::new(
            std::fs::read(cairn_test_artifacts::SWAP_SAGA).expect("swap"),
        ))
        .await
        .expect("add swap");
    (engine, testkit, swap)
}

/// Drives `id` to the end and returns its output; panics unless it completed.
pub async fn drive_to_output(engine: &Engine, id: &cairn_core::ExecutionId) -> serde_json::Value {
    drive_to_end(engine, id)
        .await
        .unwrap_or_else(|f| panic!("{id} did not complete: {f}"))
}

/// Drives `id` to the end: its output, or the failure it ended with.
pub async fn drive_to_end(
    engine: &Engine,
    id: &cairn_core::ExecutionId,
) -> Result<serde_json::Value, cairn_core::Failure> {
    let r = engine
        .drive(id, cairn_engine::AdvanceOptions::default())
        .await
        .expect("drive");
    let cairn_engine::Advance::Finished { entry, .. } = r else {
        panic!("{id} did not finish: {r:?}")
    };
    match &entry.event {
        cairn_core::Event::Completed { output } => Ok(output.to_json_value()),
        cairn_core::Event::Failed { failure } => Err(failure.clone()),
        other => panic!("{id} finished with {other:?}"),
    }
}

/// Starts `workflow` of `component` under a fresh id.
pub async fn start(
    engine: &Engine,
    component: &LoadedComponent,
    workflow: &str,
    input: serde_json::Value,
) -> cairn_core::ExecutionId {
    let id = cairn_core::store_suite::fresh_id(workflow);
    engine
        .start(StartRequest {
            workflow: workflow.into(),
            id: id.clone(),
            input: Payload::json(&input),
            component: Some(component.hash.clone()),
            parent: None,
        })
        .await
        .expect("start");
    id
}

/// Asserts the journal is 0..n with no duplicate operation.
pub async fn assert_journal_sound(
    store: &dyn Store,
    id: &cairn_core::ExecutionId,
) -> Vec<cairn_core::Entry> {
    let journal = store.load(id).await.expect("load").journal;
    for (i, e) in journal.iter().enumerate() {
        assert_eq!(
            e.index as usize, i,
            "journal of {id} has a gap or duplicate at {i}"
        );
    }
    let mut completions: Vec<u32> = journal
        .iter()
        .filter(|e| {
            matches!(
                e.event,
                cairn_core::Event::ActivityCompleted { .. }
                    | cairn_core::Event::TimerFired { .. }
                    | cairn_core::Event::SignalReceived { .. }
            )
        })
        .filter_map(|e| e.event.seq())
        .collect();
    let n = completions.len();
    completions.sort();
    completions.dedup();
    assert_eq!(completions.len(), n, "an operation of {id} completed twice");
    cairn_core::replay::Replay::new(journal.clone()).expect("the journal replays");
    journal
}
