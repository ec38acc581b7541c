//! The engine on real stores (SQLite; DynamoDB on the emulator): racing
//! drivers, signals landing mid-advance, injected store faults. One binary,
//! one module per area; the store-sensitive tests run on both stores.

mod activities;
mod components;
mod faults;
mod inbox;
mod racing;
mod runs;
mod wit;

/// Runs an async test body on a multi-threaded runtime (drivers race for real).
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
