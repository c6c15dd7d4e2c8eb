//! The filesystem core: the tree, its metadata cache, the read path and the write path, over
//! the [`Backend`](crate::xnat::Backend) trait. No FUSE types live here.
//!
//! - `namespace` maps paths to XNAT objects from cached listings (`node`, `inode`, `names`
//!   say what an inode is and how names are shown);
//! - `read` serves reads from the block cache (`cache`) and runs the one shared download per
//!   file version that fills it, and fetches the next files of a folder read in order;
//! - `write` stages files written under a resource, uploads them on close, keeps what failed
//!   in a spool, and makes and deletes XNAT objects;
//! - `views` makes the read-only `.bids` and `.tables` folders of each project from the same
//!   listings, their files the archive's own or made by the mount;
//! - `ops` puts them together as the operations the FUSE adapter calls; `error` is the one
//!   error type they return, carrying its errno and log level.

pub mod cache;
pub mod error;
pub mod inode;
pub mod mtime;
pub mod names;
pub mod namespace;
pub mod node;
pub mod ops;
pub mod owned_dir;
pub mod read;
pub mod shared;
pub mod views;
pub mod write;

#[cfg(test)]
mod tests;
