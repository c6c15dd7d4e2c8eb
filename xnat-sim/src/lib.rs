//! xnat-sim: an XNAT REST emulator for testing xnatfs and XNAT clients
//! (pyxnat, xnatpy).
//!
//! - [`model`]: the archive (projects … files, users) and its lookups.
//! - [`store`]: the archive on disk (`archive.json` + blobs).
//! - [`http`]: the faithful REST server (routing, listings, downloads, uploads, …).
//! - [`auth`]: Basic, JSESSION, form login, alias tokens, timeouts, lockout.
//! - [`knobs`]: latency, bandwidth, Range, faults, counters — layers around `http`.
//! - [`server`]: [`SimServer`] / [`BlockingSimServer`] for tests and the binary
//!   (`accept`: the accept loop that owns every connection).
//! - [`populate`] and [`import`]: building archives.

mod accept;
pub mod auth;
pub mod http;
pub mod import;
pub mod knobs;
pub mod listing;
pub mod model;
pub mod populate;
pub mod server;
pub mod store;
mod text;

pub use import::{import, ImportOptions};
pub use knobs::{Faults, StatsSnapshot};
pub use populate::{add_file, add_file_named, populate, study, Shape, Summary, STUDY_PROJECT};
pub use server::{BlockingSimServer, SimConfig, SimServer};
pub use store::Store;
