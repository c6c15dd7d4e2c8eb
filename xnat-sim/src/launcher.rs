//! `xnat-sim start` and `xnat-sim stop`: the one way scripts and test suites run a server in the
//! background. `start` runs this executable again as `serve` in a session of its own, waits until
//! it listens, prints its URL and exits; `stop` ends it by PID. The shell scripts, the Python
//! suites and the Rust tests share this code instead of each reading the `serve` banner and
//! killing the process in its own way.
//!
//! Readiness travels over a pipe: the server gets its write end as `serve --ready-fd N`, writes
//! its URL there once it listens, and closes it. The server's stdout and stderr go to the log
//! (never to a pipe of ours), so nothing it writes later can meet a reader that has gone.
//! `start` runs no threads and no runtime before it spawns the server, and it spawns with
//! `std::process::Command` (no bare `fork`).

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The flags of `start` that are not `serve` flags.
#[derive(Args)]
pub struct StartOptions {
    /// Write the server's PID to FILE. It is written as soon as the server runs, so a caller
    /// interrupted while `start` waits can still stop it.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Append the server's stdout and stderr to FILE. Without it they go to an unnamed file
    /// that only `start` reads (to show why a server did not come up).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Seconds to wait for the server to listen.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

/// Which server `stop` ends (one of the two), and how patiently.
#[derive(Args)]
pub struct StopOptions {
    /// Stop the server whose PID is in FILE (from `start --pid-file`), then remove FILE.
    /// A missing FILE means there is nothing to stop.
    #[arg(long, value_name = "FILE", required_unless_present = "pid")]
    pub pid_file: Option<PathBuf>,
    /// Stop the server with this PID.
    #[arg(long, conflicts_with = "pid_file", value_parser = clap::value_parser!(i32).range(1..))]
    pub pid: Option<i32>,
    /// Seconds between SIGTERM and SIGKILL.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,
}

/// How long a server that did not come up gets between SIGTERM and SIGKILL, and how long a
/// killed one may take to vanish.
const GRACE: Duration = Duration::from_secs(2);
/// Lines of the server's output shown when it did not come up.
const TAIL_LINES: usize = 20;

/// The `serve` command line for the serve flags given to `start`, read back from what clap
/// parsed: `serve_flags` holds the definitions, `given` the matches of `start`. Each value is
/// passed as `--name=value`, so a value that starts with `-` stays a value.
pub fn serve_argv(serve_flags: &clap::Command, given: &ArgMatches) -> Vec<OsString> {
    let mut argv = vec![OsString::from("serve")];
    for flag in serve_flags.get_arguments() {
        let id = flag.get_id().as_str();
        if given.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let long = flag.get_long().expect("every serve flag has a long name");
        if flag.get_action().takes_values() {
            for value in given.get_raw(id).into_iter().flatten() {
                let mut arg = OsString::from(format!("--{long}="));
                arg.push(value);
                argv.push(arg);
            }
        } else {
            argv.push(format!("--{long}").into());
        }
    }
    argv
}

/// Starts `serve_argv` (from [`serve_argv`]) in the background and returns the server's URL
/// once it listens. On any failure the server is stopped, the PID file removed, and the error
/// says why, with the tail of the server's output.
pub fn start(options: &StartOptions, serve_argv: Vec<OsString>) -> Result<String, String> {
    if let Some(pid_file) = &options.pid_file {
        // Overwriting the file of a server that still runs would lose the only handle on it.
        if let Ok(Some(pid)) = read_pid(pid_file) {
            if let Process::Server = process(pid) {
                return Err(format!(
                    "{} names xnat-sim server {pid}, which still runs; stop it first \
                     (xnat-sim stop --pid-file {0})",
                    pid_file.display()
                ));
            }
        }
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let log = Log::open(options.log.as_deref())?;
    let (ready_reader, ready_writer) =
        io::pipe().map_err(|e| format!("cannot make the readiness pipe: {e}"))?;
    let ready_writer = above_stdio(ready_writer.into())
        .map_err(|e| format!("cannot make the readiness pipe: {e}"))?;
    let ready_fd = ready_writer.as_raw_fd();

    let mut command = Command::new(&exe);
    command
        .args(serve_argv)
        .arg(format!("--ready-fd={ready_fd}"))
        .stdin(Stdio::null())
        .stdout(log.handle()?)
        .stderr(log.handle()?);
    // SAFETY: the closure runs in the child between fork and exec and makes only
    // async-signal-safe calls (setsid, close_range, fcntl) on its own state.
    unsafe {
        command.pre_exec(move || {
            // Its own session: the caller's Ctrl-C and terminal hangup do not reach the server.
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            // Descriptors the caller let `start` inherit (a CI runner's pipe, say) must not stay
            // open in a server that outlives it: a reader waiting for their end would wait for
            // the server. Best effort: kernels before 5.11 lack CLOSE_RANGE_CLOEXEC.
            let every_other = [(3, ready_fd - 1), (ready_fd + 1, libc::c_int::MAX)];
            for (first, last) in every_other {
                if first <= last {
                    let cloexec = libc::CLOSE_RANGE_CLOEXEC;
                    libc::syscall(libc::SYS_close_range, first as u32, last as u32, cloexec);
                }
            }
            // The write end is close-on-exec like every descriptor std makes; the server keeps it.
            if libc::fcntl(ready_fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    // Only the server holds the write end now, so the pipe ends when the server does.
    drop(ready_writer);

    if let Some(pid_file) = &options.pid_file {
        if let Err(e) = fs::write(pid_file, format!("{}\n", child.id())) {
            abandon(&mut child, None, false);
            return Err(format!("cannot write {}: {e}", pid_file.display()));
        }
    }

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(ready_reader).read_line(&mut line);
        let _ = tx.send(read.map(|_| line));
    });
    let timeout = Duration::from_secs(options.timeout);
    let (failure, exiting) = match rx.recv_timeout(timeout) {
        Ok(Ok(line)) if line.ends_with('\n') && line.starts_with("http://") => {
            return Ok(line.trim_end().to_string());
        }
        // The pipe ended without a URL: the server is on its way out.
        Ok(_) => ("exited before it was listening".to_string(), true),
        Err(_) => (
            format!("was not listening after {} s", options.timeout),
            false,
        ),
    };
    let status = abandon(&mut child, options.pid_file.as_deref(), exiting);
    let status = status.map_or_else(String::new, |s| format!(" ({s})"));
    Err(format!(
        "the server {failure}{status}{}",
        log.tail(TAIL_LINES)
    ))
}

/// Stops a server that did not come up (SIGTERM, then SIGKILL; an `exiting` one first gets
/// the time to end by itself, so its own exit status is the one reported), reaps it, and
/// removes its PID file. Returns how it ended.
fn abandon(
    child: &mut Child,
    pid_file: Option<&Path>,
    exiting: bool,
) -> Option<std::process::ExitStatus> {
    let ends_within = |child: &mut Child, wait: Duration| {
        let deadline = Instant::now() + wait;
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    };
    if !(exiting && ends_within(child, GRACE)) {
        let _ = signal(child.id() as i32, libc::SIGTERM);
        if !ends_within(child, GRACE) {
            let _ = child.kill();
        }
    }
    let status = child.wait().ok();
    if let Some(pid_file) = pid_file {
        let _ = fs::remove_file(pid_file);
    }
    status
}

/// Moves a descriptor above 2 (still close-on-exec): the child's stdin, stdout and stderr are
/// set up before it runs and would replace a pipe end with one of their numbers, which the
/// pipe gets when `start` itself runs with one of them closed.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: fcntl on a descriptor we own; the new descriptor is ours alone.
    let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if moved == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `moved` was just made by F_DUPFD_CLOEXEC and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}

/// Where the server's stdout and stderr go, and where this run of it starts in there.
struct Log {
    file: File,
    path: Option<PathBuf>,
    start: u64,
}

impl Log {
    fn open(path: Option<&Path>) -> Result<Log, String> {
        let file = match path {
            // Appended to: a log shared by several runs (a restart) keeps the earlier ones.
            Some(path) => OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(path)
                .map_err(|e| format!("cannot open the log {}: {e}", path.display()))?,
            None => tempfile::tempfile().map_err(|e| format!("cannot make a log file: {e}"))?,
        };
        let start = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Log {
            file,
            path: path.map(Path::to_path_buf),
            start,
        })
    }

    fn handle(&self) -> Result<File, String> {
        self.file
            .try_clone()
            .map_err(|e| format!("cannot share the log file: {e}"))
    }

    /// The last `lines` lines this run wrote, as the end of an error message.
    fn tail(&self, lines: usize) -> String {
        const MAX: u64 = 64 * 1024;
        let end = self.file.metadata().map(|m| m.len()).unwrap_or(self.start);
        let from = self.start.max(end.saturating_sub(MAX));
        let mut bytes = vec![0; (end - from) as usize];
        let read = self.file.read_at(&mut bytes, from).unwrap_or(0);
        let text = String::from_utf8_lossy(&bytes[..read]);
        let text = text.trim_end();
        let whence = match &self.path {
            Some(path) => format!(" (from {})", path.display()),
            None => String::new(),
        };
        if text.is_empty() {
            return format!("; it wrote nothing{whence}");
        }
        let all: Vec<&str> = text.lines().collect();
        let shown = &all[all.len().saturating_sub(lines)..];
        format!("; the last lines it wrote{whence}:\n{}", shown.join("\n"))
    }
}

/// The write end of `start`'s readiness pipe, handed to `serve --ready-fd FD`. Checked and
/// claimed before the server starts, so a wrong number fails at once.
pub fn ready_pipe(fd: RawFd) -> io::Result<File> {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    if fd <= 2 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--ready-fd {fd} is not an open descriptor above 2"),
        ));
    }
    // SAFETY: the descriptor is open (checked above) and was handed to this process for this
    // purpose alone; nothing else here uses it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Tells `start` the server listens at `url`, and closes the pipe.
pub fn report_ready(mut pipe: File, url: &str) -> io::Result<()> {
    writeln!(pipe, "{url}").map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot tell `xnat-sim start` the URL (has it gone?): {e}"),
        )
    })
}

/// Stops the server named by `--pid-file` or `--pid`: SIGTERM, then SIGKILL after the timeout.
/// Done (Ok) once it is gone, also when it was gone before; the PID file is then removed.
pub fn stop(options: &StopOptions) -> Result<(), String> {
    let pid = match (options.pid, &options.pid_file) {
        (Some(pid), _) => pid,
        (None, Some(pid_file)) => match read_pid(pid_file)? {
            Some(pid) => pid,
            None => return Ok(()),
        },
        (None, None) => return Err("give --pid-file FILE or --pid PID".into()),
    };
    match process(pid) {
        Process::Gone => {}
        Process::Other(command) => {
            // A PID file outlives its server when that ended by itself; the number may have
            // been reused since. Whatever runs under it now is not ours to stop.
            let what = format!("process {pid} is not an xnat-sim server (it runs `{command}`)");
            if options.pid.is_some() {
                return Err(format!("{what}; not stopping it"));
            }
            eprintln!("xnat-sim stop: {what}; the server has already exited");
        }
        Process::Server => terminate(pid, Duration::from_secs(options.timeout))?,
    }
    if let Some(pid_file) = &options.pid_file {
        match fs::remove_file(pid_file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(format!("cannot remove {}: {e}", pid_file.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

fn terminate(pid: i32, timeout: Duration) -> Result<(), String> {
    signal(pid, libc::SIGTERM)?;
    if gone_within(pid, timeout) {
        return Ok(());
    }
    eprintln!(
        "xnat-sim stop: server {pid} still runs {} s after SIGTERM; sending SIGKILL",
        timeout.as_secs()
    );
    signal(pid, libc::SIGKILL)?;
    if gone_within(pid, GRACE) {
        return Ok(());
    }
    Err(format!("server {pid} still runs after SIGKILL"))
}

fn gone_within(pid: i32, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if let Process::Gone = process(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: i32, signal: libc::c_int) -> Result<(), String> {
    // SAFETY: kill has no memory-safety preconditions; pid > 0 names one process, never a group.
    if unsafe { libc::kill(pid, signal) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        return Ok(()); // gone already
    }
    Err(format!("cannot signal process {pid}: {e}"))
}

/// The PID in a PID file; None if there is no file.
fn read_pid(pid_file: &Path) -> Result<Option<i32>, String> {
    let text = match fs::read_to_string(pid_file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", pid_file.display())),
    };
    match text.trim().parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(Some(pid)),
        _ => Err(format!(
            "{} does not hold a PID: {:?}",
            pid_file.display(),
            text.trim()
        )),
    }
}

/// What runs under a PID, as far as stopping a server goes.
enum Process {
    /// Nothing, or a zombie: a server that exited and waits for its parent (often init,
    /// since `start` has exited) to reap it.
    Gone,
    /// An `xnat-sim serve`.
    Server,
    /// Something else, with its command line.
    Other(String),
}

fn process(pid: i32) -> Process {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Process::Gone;
    };
    // "PID (COMM) STATE …": COMM may hold spaces and parentheses, so the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, None | Some("Z") | Some("X")) {
        return Process::Gone;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    let is_server = args.len() >= 2
        && args[1] == "serve"
        && Path::new(&args[0])
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("xnat-sim"));
    if is_server {
        Process::Server
    } else {
        Process::Other(args.join(" "))
    }
}
