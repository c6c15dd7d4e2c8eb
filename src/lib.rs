//! xnatfs: mount an XNAT imaging archive as a filesystem.
//!
//! The library holds everything the binary runs, so tests drive the same code users do.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod fs;
pub mod fuse;
pub mod generate;
pub mod mount;
mod run;
pub mod status;
pub mod token;
pub mod warm;
pub mod xattr;
pub mod xnat;

pub use run::run_cli;
