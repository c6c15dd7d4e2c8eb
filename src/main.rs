//! `xnatfs` and `mount.xnatfs`: parse the command line and hand over to the library.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use xnatfs::cli::{Cli, Command};

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    // Called as mount.xnatfs (by mount(8), or by hand): the same as `xnatfs mount …`.
    let invoked_as_helper = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|name| name == "mount.xnatfs");
    if invoked_as_helper {
        args.insert(1, "mount".into());
    }
    let cli = Cli::parse_from(args.clone());
    let Command::Mount(mount) = cli.command;
    let result = mount
        .resolve()
        .and_then(|opts| xnatfs::mount::run(opts, args[1..].to_vec()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xnatfs: {message}");
            ExitCode::FAILURE
        }
    }
}
