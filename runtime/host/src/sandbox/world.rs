//! What a component may import: the header and WIT version checks, the
//! deterministic WASI of workflow mode, and the traps that replace every other
//! import.

use super::trap::DeniedCall;
use super::{GuestState, WIT_PACKAGE};
use crate::error::HostError;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker, ResourceTable};

/// Interfaces (without version) the workflow linker provides.
const WORKFLOW_INTERFACES: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/exit",
    "wasi:cli/environment",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "cairn:workflow/types",
    "cairn:workflow/host",
];

/// Every other import of the component (filesystem, sockets, http...) is
/// defined as a trap that names the call: the component links, and fails
/// only if workflow code actually uses one.
pub(super) fn deny_nondeterministic_imports(
    engine: &Engine,
    linker: &mut Linker<GuestState>,
    component: &Component,
) -> wasmtime::Result<()> {
    use wasmtime::component::types::ComponentItem;
    for (name, item) in component.component_type().imports(engine) {
        let interface = name.split('@').next().unwrap_or(name);
        if WORKFLOW_INTERFACES.contains(&interface) {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let mut inst = linker.instance(name)?;
        for (export, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let call = format!("{interface}#{export}");
                    inst.func_new(export, move |_, _, _, _| {
                        Err(wasmtime::Error::new(DeniedCall(call.clone())))
                    })?;
                }
                ComponentItem::Resource(_) => {
                    // Aliases of wasi:io resources must be the very types the
                    // io interfaces use; the denied interfaces' own resources
                    // are never created, so one placeholder type serves them.
                    use wasmtime::component::ResourceType;
                    let ty = match export {
                        "input-stream" => {
                            ResourceType::host::<wasmtime_wasi_io::streams::DynInputStream>()
                        }
                        "output-stream" => {
                            ResourceType::host::<wasmtime_wasi_io::streams::DynOutputStream>()
                        }
                        "error" => ResourceType::host::<wasmtime_wasi_io::streams::Error>(),
                        "pollable" => ResourceType::host::<wasmtime_wasi_io::poll::DynPollable>(),
                        _ => ResourceType::host::<()>(),
                    };
                    inst.resource(export, ty, |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The WASI interfaces a workflow may use, all deterministic. Filesystem and
/// sockets are left out: [`deny_nondeterministic_imports`] turns each of
/// their functions into a trap that names it.
pub(super) fn add_deterministic_wasi(l: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::WasiCli;
    use wasmtime_wasi::clocks::WasiClocks;
    use wasmtime_wasi::p2::bindings::{cli, clocks, random};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi::{cli::WasiCliView, clocks::WasiClocksView};

    struct HasIo;
    impl wasmtime::component::HasData for HasIo {
        type Data<'a> = &'a mut ResourceTable;
    }
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<GuestState, HasIo>(l, |t| {
        &mut t.table
    })?;
    wasmtime_wasi_io::bindings::wasi::io::poll::add_to_linker::<GuestState, HasIo>(l, |t| {
        &mut t.table
    })?;
    wasmtime_wasi_io::bindings::wasi::io::streams::add_to_linker::<GuestState, HasIo>(l, |t| {
        &mut t.table
    })?;
    clocks::wall_clock::add_to_linker::<GuestState, WasiClocks>(l, GuestState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<GuestState, WasiClocks>(l, GuestState::clocks)?;
    random::random::add_to_linker::<GuestState, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure::add_to_linker::<GuestState, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure_seed::add_to_linker::<GuestState, WasiRandom>(l, |t| t.wasi.random())?;
    cli::exit::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::environment::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::stdin::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::stdout::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::stderr::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::terminal_input::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::terminal_output::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::terminal_stdin::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::terminal_stdout::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::terminal_stderr::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    Ok(())
}

/// Refuses what is not a component before compiling it, with a hint.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), HostError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(HostError::NotAComponent(
            "the file is not WebAssembly (no \\0asm header): pass the .wasm built by `cargo build --target wasm32-wasip2`".into(),
        ));
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(HostError::NotAComponent(
            "this is a core WebAssembly module, not a component: build the guest for the wasm32-wasip2 target (cargo build --target wasm32-wasip2)".into(),
        ));
    }
    Ok(())
}

/// What to say about a component that uses `name` (`cairn:workflow/guest@0.2.0`)
/// instead of this host's version: both versions, and what to do.
fn version_mismatch(name: &str) -> String {
    let ours = &WIT_PACKAGE["cairn:workflow@".len()..];
    let theirs = name.rsplit_once('@').map_or("", |(_, v)| v);
    let parse = |v: &str| -> Option<Vec<u64>> { v.split('.').map(|p| p.parse().ok()).collect() };
    let advice = match (parse(theirs), parse(ours)) {
        (Some(t), Some(o)) if t > o => format!(
            "the component's SDK is newer than this cairn: upgrade cairn to one that implements {theirs}, or rebuild the component with the cairn-sdk of this cairn (WIT {ours})"
        ),
        _ => format!("rebuild the component with the cairn-sdk of this cairn (WIT {ours})"),
    };
    format!(
        "the component was built against cairn:workflow@{theirs} (it uses {name}), but this host implements {WIT_PACKAGE}: {advice}"
    )
}

/// Checks the component speaks this host's WIT version.
pub(super) fn check_world(engine: &Engine, component: &Component) -> Result<(), HostError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let guest = format!(
        "cairn:workflow/guest@{}",
        &WIT_PACKAGE["cairn:workflow@".len()..]
    );
    let other_version = exports.iter().chain(&imports).find(|n| {
        n.starts_with("cairn:workflow/") && !n.ends_with(&WIT_PACKAGE["cairn:workflow".len()..])
    });
    if let Some(name) = other_version {
        return Err(HostError::WrongWorld(version_mismatch(name)));
    }
    if !exports.contains(&guest) {
        return Err(HostError::WrongWorld(format!(
            "the component does not export {guest}, so it is not a Cairn component (exports: {}): build it with cairn-sdk and `cairn_sdk::component!`",
            if exports.is_empty() {
                "none".into()
            } else {
                exports.join(", ")
            }
        )));
    }
    Ok(())
}
