//! headway from JavaScript: a thin [Node-API](https://nodejs.org/api/n-api.html) facade
//! (napi-rs) over the headway library and its Sunbird adapter, the npm package `headway`
//! (`bindings/node`). It only converts types: every rule lives in the library. The same
//! `.node` file loads in Node and in Electron (both speak Node-API 8).
//!
//! Local calls are synchronous (they are fast); `sync` and `refreshCourses` return Promises
//! run on napi-rs's tokio runtime. Every failure is a `HeadwayError` with a `code` (see
//! `error.rs`); a panic is caught at the boundary and becomes `INTERNAL`.

// Not in `cargo test`'s build of the lib: napi-rs registers exports only outside tests.
#[cfg(all(feature = "bench", not(test)))]
mod bench;
mod error;
mod events;
mod packed;
mod server;
mod store;
mod types;
