//! Host bindings generated from `wit/`.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    world: "component",
    path: "../../wit",
    imports: {
        "cairn:workflow/host.wait-any": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

pub use cairn::workflow::types;
