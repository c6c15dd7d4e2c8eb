//! The command line's entry point. `mount.xnatfs` is the same binary under another name (a
//! symlink made by `scripts/install.sh`; cargo cannot name a binary with a dot), told apart by
//! `argv[0]`.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Parse this process's arguments and run the command; called as `mount.xnatfs` (by mount(8),
/// or by hand) it is the same as `xnatfs mount …`.
pub fn run_cli() -> ExitCode {
    tune_malloc();
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as_helper = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|name| name == "mount.xnatfs");
    if invoked_as_helper {
        args.insert(1, "mount".into());
    }
    let cli = Cli::parse_from(args.clone());
    let mount = match cli.command {
        Command::Mount(mount) => mount,
        Command::Status(status) => return crate::status::run(&status),
    };
    let result = mount
        .resolve()
        .and_then(|opts| crate::mount::run(opts, args[1..].to_vec()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xnatfs: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Allocator settings for a daemon that streams megabyte blocks through many threads. glibc
/// gives each thread that allocates its own arena and keeps what was freed there, which more
/// than doubles the daemon's peak RSS: two arenas keep the peak near the engine's live memory.
/// And block buffers (a block plus slack, recycled by `cache::BlockBuffers`) are put above a
/// fixed mmap threshold, so one freed beyond the recycler's free list goes back to the system
/// rather than leaving a hole in the heap; everything smaller (a FUSE write or reply is at most
/// a block) stays on the heap. Must run before any thread starts.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        let threshold = crate::fs::cache::DEFAULT_BLOCK_SIZE + 4096;
        libc::mallopt(libc::M_MMAP_THRESHOLD, threshold as libc::c_int);
    }
}
