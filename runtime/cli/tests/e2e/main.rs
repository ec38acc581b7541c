//! End-to-end tests through the `cairn` binary on the embedded store.
//! One binary, one module per area.

mod support;

mod bad_input;
mod chaos;
mod components;
mod console;
mod crash;
mod dev;
mod dynamodb;
mod features;
mod hostile;
mod http;
mod http_server;
mod nondeterminism;
mod otel;
mod precompile;
mod signals;
mod swap;
