//! The filesystem core: namespace, metadata cache, read path. No FUSE types live here.
//!
//! `namespace` maps paths to XNAT objects from cached listings; `cache` keeps file blocks in
//! memory and on disk; `read` serves reads from it and runs the one shared download per file
//! that fills it; `core` puts them together for the FUSE adapter.

pub mod cache;
pub mod catalog;
pub mod core;
mod core_write;
pub mod error;
pub mod inode;
pub mod names;
pub mod namespace;
pub mod node;
pub mod read;
pub mod remote;
pub mod write;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod namespace_tests;
