//! xnatfs: mount an XNAT archive as a directory tree.
//!
//! The filesystem arrives with the read-path issue; for now the binary
//! reports its version so the workspace builds end to end.

fn main() {
    println!("xnatfs {}", env!("CARGO_PKG_VERSION"));
}
