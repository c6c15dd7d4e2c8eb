//! The filesystem core: no FUSE types, no HTTP client types.
//!
//! `cache` keeps file blocks in memory and on disk; `read` serves reads from it and runs the one
//! shared download per file that fills it.

pub mod cache;

pub mod read;
