//! `xnat-sim start` and `xnat-sim stop`, the background launcher every script and test suite
//! uses: the binary run as a user runs it, with a temp root. A server that did not come up,
//! and every server a test started, must leave no process behind.

mod common;
use common::Api;
use std::path::Path;
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_xnat-sim");

fn xnat_sim(args: &[&str]) -> Output {
    Command::new(EXE).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The fields of /proc/PID/stat after the command name; None once the process is gone. A zombie
/// counts as gone: a stopped server waits there for init, its parent since `start` exited.
fn stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<String> = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .map(String::from)
        .collect();
    (fields[0] != "Z" && fields[0] != "X").then_some(fields)
}

/// Stops the server of a PID file when the test ends, also when it fails half-way.
struct StopOnDrop<'a>(&'a Path);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        xnat_sim(&["stop", "--pid-file", self.0.to_str().unwrap()]);
    }
}

/// Live processes whose command line names `root` (unique to the test).
fn servers_of(root: &Path) -> Vec<u32> {
    let root = root.to_str().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            text(&cmdline).contains(root) && stat(pid).is_some()
        })
        .collect()
}

#[test]
fn start_prints_the_url_and_stop_ends_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (pid_file, log) = (dir.path().join("sim.pid"), dir.path().join("sim.log"));
    let root = dir.path().join("archive");
    let out = xnat_sim(&[
        "start",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--user",
        "alice:pw",
        "--stale-size",
        "--range",
        "--latency-ms",
        "1",
    ]);
    let _stop = StopOnDrop(&pid_file);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one line, the URL: {stdout:?}");
    let url = stdout.trim_end();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(servers_of(&root), vec![pid]);
    // detached: it leads a session of its own, so the caller's Ctrl-C does not reach it
    let fields = stat(pid).expect("the server runs after start returned");
    assert_eq!(fields[3], pid.to_string(), "session id");

    let alice = Api::new(url, Some(("alice", "pw")));
    assert_eq!(
        alice.text("/data/auth"),
        (200, "User 'alice' is logged in".into())
    );
    assert_eq!(alice.text("/data/version").0, 200);
    // every serve flag given to start reached the server
    let faults = alice.json("/__sim/faults");
    assert_eq!(faults["stale_size"], -1);
    assert_eq!(faults["range"], true);
    assert_eq!(faults["latency_ms"], 1);
    // the server's own banner went to the log, as `serve` prints it
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        logged.lines().next(),
        Some(&*format!("xnat-sim listening on {url}"))
    );

    // a second start on the same PID file would lose the first server: refused
    let again = xnat_sim(
        &["start", "--pid-file", pid_file.to_str().unwrap(), "--root"]
            .into_iter()
            .chain([dir.path().join("other").to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("still runs"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );

    let out = xnat_sim(&["stop", "--pid-file", pid_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stat(pid).is_none(), "the server still runs after stop");
    assert!(!pid_file.exists());
    assert!(reqwest::blocking::get(format!("{url}/")).is_err());
    // stopping again (no PID file now) is fine: there is nothing to stop
    let out = xnat_sim(&["stop", "--pid-file", pid_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn start_fails_with_a_message_and_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sim.pid");

    // a flag serve does not take: refused before anything runs
    let root = dir.path().join("archive");
    let out = xnat_sim(&["start", "--root", root.to_str().unwrap(), "--no-such-flag"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--no-such-flag"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    // a root that cannot be a folder: the server exits, start shows why
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let out = xnat_sim(&[
        "start",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--root",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("exited before it was listening"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Not a directory"),
        "the server's own error: {stderr}"
    );
    assert!(
        !pid_file.exists(),
        "the PID file of a server that did not start"
    );
    assert_eq!(servers_of(&file), Vec::<u32>::new());

    // a server that does not listen in time is stopped
    let out = xnat_sim(&["start", "--timeout", "0", "--root", root.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("was not listening after 0 s"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(servers_of(&root), Vec::<u32>::new());
}

#[test]
fn stop_leaves_a_process_that_is_not_a_server_alone() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sim.pid");
    // a stale PID file whose number now belongs to something else (this test): the server is
    // gone, so stop succeeds, removes the file, and signals nothing
    let me = std::process::id().to_string();
    std::fs::write(&pid_file, format!("{me}\n")).unwrap();
    let out = xnat_sim(&["stop", "--pid-file", pid_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not an xnat-sim server"));
    assert!(!pid_file.exists());
    // the same PID given outright is a mistake worth an error
    let out = xnat_sim(&["stop", "--pid", &me]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not stopping it"),
        "{}",
        text(&out.stderr)
    );
    // a PID file that holds no PID
    std::fs::write(&pid_file, "garbage").unwrap();
    let out = xnat_sim(&["stop", "--pid-file", pid_file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("does not hold a PID"));
}
