//! Shared helpers of the integration tests: a real mount of the `xnatfs` binary (`mount`) and an
//! in-process xnat-sim with the expected tree computed from its store (`sim`).

#![allow(dead_code)]

pub mod mount;
pub mod sim;
