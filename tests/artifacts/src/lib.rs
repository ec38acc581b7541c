//! Paths of the guest components the tests run, compiled by this crate's
//! `build.rs` for `wasm32-wasip2` (into `target/guests`, a target directory
//! of its own so the nested cargo never waits on the outer one's lock).

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
