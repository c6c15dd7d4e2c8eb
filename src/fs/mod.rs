//! The filesystem core: namespace, metadata cache, read path. No FUSE types live here.

pub mod catalog;
pub mod error;
pub mod inode;
pub mod names;
pub mod namespace;
pub mod node;
pub mod core;
pub mod remote;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod namespace_tests;
