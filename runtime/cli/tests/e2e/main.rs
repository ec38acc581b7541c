//! End-to-end tests through the `cairn` binary on the embedded store.
//! One binary, one module per area.

mod support;

mod bad_input;
mod chaos;
mod components;
mod crash;
mod dynamodb;
mod features;
mod hostile;
mod http;
mod http_server;
mod nondeterminism;
mod precompile;
mod signals;
mod swap;
