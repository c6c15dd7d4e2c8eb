//! `xnatfs`: parse the command line and hand over to the library.

fn main() -> std::process::ExitCode {
    xnatfs::run_cli()
}
