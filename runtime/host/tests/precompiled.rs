//! Precompiled components: a good `.cwasm` in a precompiled directory is
//! used; a garbage one, or one compiled for another architecture, is skipped
//! with a warning naming the file and the reason, and the component is
//! compiled instead; the aarch64 artifact `cairn precompile` builds for the
//! Lambda function passes every check that can run off the target.

use cairn_host::{
    ComponentBytes, Precompiler, Sandbox, SandboxConfig, engine_tag, host_target,
    precompiled_file_name,
};
use std::io::Write;
use std::sync::{Arc, Mutex};

const AARCH64: &str = "aarch64-unknown-linux-gnu";

fn swap_saga() -> ComponentBytes {
    ComponentBytes::new(std::fs::read(cairn_test_artifacts::SWAP_SAGA).expect("swap_saga.wasm"))
}

fn sandbox(precompiled: &std::path::Path, cache: Option<&std::path::Path>) -> Sandbox {
    Sandbox::new(SandboxConfig {
        precompiled_dirs: vec![precompiled.to_path_buf()],
        cache_dir: cache.map(|c| c.to_path_buf()),
        ..SandboxConfig::default()
    })
    .expect("sandbox")
}

/// Collects what the sandbox logs on this thread while the guard lives.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(move || logs.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::WARN)
                .finish(),
        )
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn a_precompiled_file_for_this_host_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let component = swap_saga();
    let pre = Precompiler::new(&SandboxConfig::default(), &host_target()).unwrap();
    let path = pre.write(&component, dir.path()).unwrap();
    let sandbox = sandbox(dir.path(), None);
    // The packaging side and the runtime agree on the name.
    assert_eq!(pre.engine_tag(), sandbox.engine_tag());
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        precompiled_file_name(&component.hash, sandbox.engine_tag())
    );
    let logs = Logs::default();
    let _guard = logs.capture();
    let loaded = sandbox.load(&component).await.unwrap();
    assert!(loaded.from_cache, "the precompiled file was not used");
    assert!(loaded.info.workflows.contains(&"swap".to_string()));
    assert_eq!(logs.text(), "", "no warning expected");
}

#[tokio::test]
async fn a_garbage_precompiled_file_is_skipped_and_the_component_compiled() {
    let dir = tempfile::tempdir().unwrap();
    let component = swap_saga();
    let sandbox = sandbox(dir.path(), None);
    let path = dir
        .path()
        .join(precompiled_file_name(&component.hash, sandbox.engine_tag()));
    std::fs::write(&path, b"\x7fELF but not really a precompiled component").unwrap();
    let logs = Logs::default();
    let _guard = logs.capture();
    let loaded = sandbox.load(&component).await.expect("compiled instead");
    assert!(!loaded.from_cache);
    let text = logs.text();
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("compiling it instead"), "{text}");
}

#[tokio::test]
async fn a_file_compiled_for_another_architecture_is_skipped_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let component = swap_saga();
    let sandbox = sandbox(dir.path(), None);
    // The other architecture's file under its own name is simply not ours...
    let other = if host_target().starts_with("aarch64") {
        "x86_64-unknown-linux-gnu"
    } else {
        AARCH64
    };
    let pre = Precompiler::new(&SandboxConfig::default(), other).unwrap();
    let own_name = pre.write(&component, dir.path()).unwrap();
    assert_ne!(pre.engine_tag(), sandbox.engine_tag());
    // ...and under this host's name (a mislabelled copy) wasmtime refuses it.
    let path = dir
        .path()
        .join(precompiled_file_name(&component.hash, sandbox.engine_tag()));
    std::fs::copy(&own_name, &path).unwrap();
    let logs = Logs::default();
    let _guard = logs.capture();
    let loaded = sandbox.load(&component).await.expect("compiled instead");
    assert!(!loaded.from_cache);
    let text = logs.text();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("architecture"), "the reason is named: {text}");
}

#[tokio::test]
async fn a_bad_cached_file_is_replaced_by_a_good_one() {
    let layer = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let component = swap_saga();
    let first = sandbox(layer.path(), Some(cache.path()));
    let name = precompiled_file_name(&component.hash, first.engine_tag());
    std::fs::write(layer.path().join(&name), b"garbage").unwrap();
    std::fs::write(cache.path().join(&name), b"garbage too").unwrap();
    assert!(!first.load(&component).await.unwrap().from_cache);
    // The compilation was written over the cache's garbage: a new process
    // (sandbox) loads it.
    let second = sandbox(layer.path(), Some(cache.path()));
    assert!(second.load(&component).await.unwrap().from_cache);
}

#[test]
fn the_aarch64_artifact_passes_the_checks_that_run_off_the_target() {
    let config = SandboxConfig::default();
    let pre = Precompiler::new(&config, AARCH64).unwrap();
    let component = swap_saga();
    let bytes = pre.precompile(&component).unwrap();

    // An engine built here from the runtime's configuration for aarch64,
    // apart from the precompiler, compiles the very same bytes (Cranelift's
    // output is deterministic), and wasmtime recognizes them as a
    // precompiled component.
    let engine = wasmtime::Engine::new(&config.wasmtime_config(Some(AARCH64)).unwrap()).unwrap();
    assert!(engine.precompile_component(&component.bytes).unwrap() == bytes);
    assert_eq!(
        wasmtime::Engine::detect_precompiled(&bytes),
        Some(wasmtime::Precompiled::Component)
    );
    // The name: the tag Sandbox::new computes on an aarch64 host
    // (engine_tag with its own triple) is the precompiler's, every time.
    let tag = engine_tag(&config, AARCH64).unwrap();
    assert_eq!(pre.engine_tag(), tag);
    assert_eq!(
        Precompiler::new(&config, AARCH64).unwrap().engine_tag(),
        tag
    );
    if !host_target().starts_with("aarch64") {
        assert_ne!(tag, engine_tag(&config, &host_target()).unwrap());
    }

    // ELF machine aarch64, and wasmtime's settings section identical to the
    // one the runtime's configuration writes for aarch64.
    pre.check(&bytes).expect("the aarch64 artifact passes");
    // The same check refuses the host's artifact and garbage.
    if !host_target().starts_with("aarch64") {
        let host = Precompiler::new(&config, &host_target()).unwrap();
        let err = pre
            .check(&host.precompile(&component).unwrap())
            .unwrap_err();
        assert!(err.contains("ELF machine"), "{err}");
    }
    assert!(pre.check(b"garbage").is_err());
    // An engine configured otherwise (here: without fuel) writes another
    // settings section: refused.
    let mut c = config.wasmtime_config(Some(AARCH64)).unwrap();
    c.consume_fuel(false);
    let differently = wasmtime::Engine::new(&c)
        .unwrap()
        .precompile_component(&component.bytes)
        .unwrap();
    let err = pre.check(&differently).unwrap_err();
    assert!(err.contains(".wasmtime.engine"), "{err}");
}
