//! Shared helpers of the integration tests: a real mount of the `xnatfs` binary (`mount`), an
//! in-process xnat-sim with the expected tree computed from its store (`sim`), [`which`] and
//! [`wait_for`].

#![allow(dead_code)]

pub mod mount;
pub mod sim;

/// Where `tool` is on `PATH`, if it is (for a test to say what it lacks).
pub fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

/// Wait up to `limit`, polling every 100 ms, until `done`; fail naming `what` otherwise.
pub fn wait_for(limit: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
