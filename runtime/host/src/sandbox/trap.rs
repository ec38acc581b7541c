//! How a guest stops: the traps the host raises (an interrupt, a denied call)
//! and how a trap becomes a [`HostError`] with the panic message and backtrace.

use super::{GuestState, Sandbox};
use crate::error::{GuestError, HostError};
use wasmtime::{Store, Trap};

/// Trap marker: the driver interrupted the guest (the reason is in the
/// store's state).
#[derive(Debug)]
pub(super) struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted by the Cairn driver")
    }
}

impl std::error::Error for Interrupted {}

/// Trap raised by an import workflow mode denies; names the call.
#[derive(Debug)]
pub(super) struct DeniedCall(pub(super) String);

impl std::fmt::Display for DeniedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "workflow code called {}, which workflow mode denies",
            self.0
        )
    }
}

impl std::error::Error for DeniedCall {}

impl Sandbox {
    pub(super) fn guest_error(&self, e: wasmtime::Error, store: &Store<GuestState>) -> HostError {
        if store.data().limits.denied {
            return GuestError::MemoryLimit {
                limit: store.data().limits.reported_limit(),
            }
            .into();
        }
        if let Some(Trap::OutOfFuel) = e.downcast_ref::<Trap>() {
            return GuestError::FuelExhausted {
                budget: self.config.fuel_per_await,
            }
            .into();
        }
        if let Some(DeniedCall(call)) = e.downcast_ref::<DeniedCall>() {
            return GuestError::Denied { call: call.clone() }.into();
        }
        let mut message = match e.downcast_ref::<Trap>() {
            Some(Trap::StackOverflow) => "stack overflow (recursion too deep?)".to_string(),
            Some(trap) => trap.to_string(),
            None => e.root_cause().to_string(),
        };
        // A Rust panic prints its message to stderr before it aborts.
        if let Some(out) = &store.data().output {
            let text = String::from_utf8_lossy(&out.contents()).into_owned();
            if let Some(panic) = text.lines().rev().find(|l| l.contains("panicked at")) {
                let next = text
                    .lines()
                    .skip_while(|l| *l != panic)
                    .nth(1)
                    .unwrap_or("");
                message = format!("{message}: {} {}", panic.trim(), next.trim())
                    .trim()
                    .to_string();
            }
        }
        if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
            let frames: Vec<String> = bt
                .frames()
                .iter()
                .filter_map(|f| f.func_name().map(short_symbol))
                .filter(|n| !is_runtime_frame(n))
                .take(4)
                .collect();
            if !frames.is_empty() {
                message.push_str(&format!(" (at {})", frames.join(" <- ")));
            }
        }
        GuestError::Trap { message }.into()
    }
}

/// `swap_saga::swap::{{closure}}::h1234` -> `swap_saga::swap::{{closure}}`.
fn short_symbol(name: &str) -> String {
    let name = name.strip_prefix('<').unwrap_or(name);
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head.to_string()
        }
        _ => name.to_string(),
    }
}

/// Frames of std, the SDK and the bindings: noise in a guest backtrace.
fn is_runtime_frame(name: &str) -> bool {
    [
        "std::",
        "core::",
        "alloc::",
        "__rust",
        "rust_panic",
        "cairn_sdk::",
        "wit_bindgen",
        "<cairn_sdk",
        "abort",
        "dlmalloc",
    ]
    .iter()
    .any(|p| name.starts_with(p) || name.contains("_export_") || name.contains("__CairnComponent"))
}
