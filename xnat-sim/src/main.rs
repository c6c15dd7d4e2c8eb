//! The `xnat-sim` command: `serve`, `start`/`stop` (a server in the background, see
//! `launcher`), `populate` and `import`. Flags are parsed here; the server and the archive
//! builders live in the library.

mod launcher;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;
use xnat_sim::{Faults, ImportOptions, Shape, SimConfig, SimServer};

#[derive(Parser)]
#[command(
    name = "xnat-sim",
    version,
    about = "An XNAT REST emulator for testing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve an archive over HTTP until SIGINT/SIGTERM.
    Serve(ServeCommand),
    /// Serve in the background: print the URL once listening, then exit (see `stop`).
    Start(StartArgs),
    /// Stop a server started by `start` (SIGTERM, then SIGKILL).
    Stop(launcher::StopOptions),
    /// Add a synthetic archive of a given shape (deterministic from --seed).
    Populate(PopulateArgs),
    /// Import a directory laid out as project/subject/experiment/scan/resource/files.
    Import(ImportArgs),
}

fn pair(s: &str) -> Result<(String, String), String> {
    s.split_once(':')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| format!("expected A:B, got {s}"))
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long)]
    root: PathBuf,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// NAME:PASSWORD (repeatable); created or updated at start.
    #[arg(long = "user", value_parser = pair)]
    users: Vec<(String, String)>,
    /// A user (from --user or the archive) who sees every project.
    #[arg(long = "admin")]
    admins: Vec<String>,
    /// USER:PROJECT membership (repeatable).
    #[arg(long = "member", value_parser = pair)]
    members: Vec<(String, String)>,
    /// USER:PROJECT read-only collaborator role (repeatable): writes get 403.
    #[arg(long = "collaborator", value_parser = pair)]
    collaborators: Vec<(String, String)>,
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Bytes per second per request/response body.
    #[arg(long)]
    bandwidth: Option<u64>,
    /// Honour Range requests (real XNAT ignores them).
    #[arg(long)]
    range: bool,
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    #[arg(long, default_value_t = 503)]
    fail_status: u16,
    #[arg(long)]
    fail_nth: Option<u64>,
    /// Answer every upload (PUT/POST on …/files…) with this status.
    #[arg(long)]
    fail_uploads: Option<u16>,
    /// Answer every upload, create and delete with this status.
    #[arg(long)]
    fail_writes: Option<u16>,
    #[arg(long)]
    reset_after_bytes: Option<u64>,
    #[arg(long)]
    stall_after_bytes: Option<u64>,
    /// How long a stall lasts (default: forever).
    #[arg(long)]
    stall_ms: Option<u64>,
    /// Report file listing Size off by DELTA bytes: --stale-size or --stale-size=DELTA (default -1).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "-1", allow_hyphen_values = true)]
    stale_size: Option<i64>,
    /// Idle session timeout in seconds.
    #[arg(long, default_value_t = 900)]
    session_timeout: u64,
    #[arg(long)]
    lockout_after: Option<u32>,
    #[arg(long, default_value_t = 3600)]
    lockout_secs: u64,
    /// Append one line per request: METHOD path?query STATUS BYTES.
    #[arg(long)]
    request_log: Option<PathBuf>,
    /// What /data/version reports.
    #[arg(long, default_value = "1.8.10")]
    xnat_version: String,
}

#[derive(Args)]
struct ServeCommand {
    #[command(flatten)]
    serve: ServeArgs,
    /// Once listening, write the URL and a newline to this inherited file descriptor and
    /// close it (how `start` learns the server is up).
    #[arg(long, value_name = "FD")]
    ready_fd: Option<RawFd>,
}

#[derive(Args)]
struct StartArgs {
    #[command(flatten)]
    launch: launcher::StartOptions,
    // Parsed so that clap checks the flags (and `start --help` lists them); the server parses
    // them again from the command line `launcher::serve_argv` rebuilds.
    #[allow(dead_code)]
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Args)]
struct PopulateArgs {
    #[arg(long)]
    root: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 1)]
    projects: usize,
    /// Subjects per project.
    #[arg(long, default_value_t = 2)]
    subjects: usize,
    /// Sessions per subject.
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Scans per session.
    #[arg(long, default_value_t = 3)]
    scans: usize,
    /// Resource labels on each scan (NIFTI and DICOM get realistic files).
    #[arg(long, value_delimiter = ',', default_value = "NIFTI,DICOM")]
    resources: Vec<String>,
    /// Files per resource.
    #[arg(long, default_value_t = 2)]
    files: usize,
    #[arg(long, default_value_t = 512 * 1024)]
    file_size: u64,
    /// QC assessors per session.
    #[arg(long, default_value_t = 0)]
    assessors: usize,
    /// Add one file of this many bytes (resource BIG of the first scan).
    #[arg(long)]
    big_file: Option<u64>,
    /// Users made members of the generated projects (repeatable): they create and edit.
    #[arg(long = "member")]
    members: Vec<String>,
    /// Users made owners of the generated projects (repeatable): they also delete.
    #[arg(long = "owner")]
    owners: Vec<String>,
    /// NAME:PASSWORD users to create (repeatable).
    #[arg(long = "user", value_parser = pair)]
    users: Vec<(String, String)>,
    /// Also make project STUDY: scans named as sites name them, NIfTI with sidecars (for the
    /// BIDS and table views). `--projects 0 --study` makes only it.
    #[arg(long)]
    study: bool,
}

#[derive(Args)]
struct ImportArgs {
    #[arg(long)]
    root: PathBuf,
    src: PathBuf,
    /// User made owner of the imported projects.
    #[arg(long)]
    owner: Option<String>,
    #[arg(long, default_value = "xnat:mrSessionData")]
    session_type: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve(a) => serve(a.serve, a.ready_fd),
        Command::Start(a) => {
            let given = matches
                .subcommand_matches("start")
                .expect("the start subcommand was parsed");
            let serve_flags = ServeArgs::augment_args(clap::Command::new("serve"));
            match launcher::start(&a.launch, launcher::serve_argv(&serve_flags, given)) {
                Ok(url) => {
                    println!("{url}");
                    Ok(())
                }
                Err(e) => {
                    eprintln!("xnat-sim start: {e}");
                    std::process::exit(1)
                }
            }
        }
        Command::Stop(a) => {
            if let Err(e) = launcher::stop(&a) {
                eprintln!("xnat-sim stop: {e}");
                std::process::exit(1)
            }
            Ok(())
        }
        Command::Populate(a) => {
            let store = xnat_sim::Store::open(&a.root)?;
            store.write(|ar| {
                for (u, p) in &a.users {
                    ar.add_user(u, p, false);
                }
            })?;
            let shape = Shape {
                seed: a.seed,
                projects: a.projects,
                subjects: a.subjects,
                sessions: a.sessions,
                scans: a.scans,
                resources: a.resources,
                files: a.files,
                file_size: a.file_size,
                assessors: a.assessors,
                big_file: a.big_file,
                members: a.members,
                owners: a.owners,
            };
            if a.study {
                xnat_sim::study(&store, &shape.members)?;
                println!("populated project {}", xnat_sim::STUDY_PROJECT);
            }
            let s = xnat_sim::populate(&store, &shape)?;
            println!(
                "populated {} project(s), {} files, {} bytes",
                s.projects.len(),
                s.files,
                s.bytes
            );
            if let Some(uri) = s.big_file_uri {
                println!("big file: {uri}");
            }
            Ok(())
        }
        Command::Import(a) => {
            let store = xnat_sim::Store::open(&a.root)?;
            let options = ImportOptions {
                owner: a.owner,
                session_type: a.session_type,
            };
            let n = xnat_sim::import(&store, &a.src, &options)?;
            println!("imported {n} files");
            Ok(())
        }
    }
}

fn serve(a: ServeArgs, ready_fd: Option<RawFd>) -> Result<(), Box<dyn std::error::Error>> {
    let ready = ready_fd.map(launcher::ready_pipe).transpose()?;
    let config = SimConfig {
        root: a.root,
        listen: a.listen,
        users: a.users,
        admins: a.admins,
        members: a.members,
        collaborators: a.collaborators,
        faults: Faults {
            latency_ms: a.latency_ms,
            bandwidth: a.bandwidth,
            range: a.range,
            fail_rate: a.fail_rate,
            fail_status: a.fail_status,
            fail_nth: a.fail_nth,
            reset_after_bytes: a.reset_after_bytes,
            stall_after_bytes: a.stall_after_bytes,
            stall_ms: a.stall_ms,
            stale_size: a.stale_size,
            fail_uploads: a.fail_uploads,
            fail_writes: a.fail_writes,
        },
        session_timeout: Duration::from_secs(a.session_timeout),
        lockout_after: a.lockout_after,
        lockout_for: Duration::from_secs(a.lockout_secs),
        request_log: a.request_log,
        version: a.xnat_version,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let server = SimServer::start(config).await?;
        let mut out = std::io::stdout();
        writeln!(out, "xnat-sim listening on {}", server.url())?;
        out.flush()?;
        if let Some(ready) = ready {
            launcher::report_ready(ready, &server.url())?;
        }
        server.run_until_signal().await?;
        Ok(())
    })
}
