//! Alias tokens and the session's life, against xnat-sim: `xnatfs token` issues a token into a
//! private file; a mount with `--token-file` logs in with it (no password in the daemon's
//! environment or arguments), and when the token is replaced in the file and the old one
//! invalidated, the next login uses the new one; an idle mount keeps its session alive across
//! the server's idle timeout with heartbeats instead of logging in again.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::mount::{xnatfs_bin, Mount};
use common::sim::*;

/// `xnatfs token URL --output FILE` with the password in the environment.
fn issue_token(url: &str, file: &Path) {
    let out = Command::new(xnatfs_bin())
        .args(["token", url, "--output"])
        .arg(file)
        .env("XNAT_USER", USER)
        .env("XNAT_PASS", PASS)
        .env_remove("XNAT_HOST")
        .stdin(Stdio::null())
        .output()
        .expect("run xnatfs token");
    assert!(
        out.status.success(),
        "xnatfs token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn token_json(file: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(file).expect("token file")).expect("JSON")
}

/// The NUL-separated strings of `/proc/PID/<what>`.
fn proc_strings(pid: u32, what: &str) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/{what}"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[test]
fn a_mount_with_a_token_file_logs_in_with_it_and_takes_a_new_one() {
    let sim = Sim::start(small_shape());
    let expected = expected_files(sim.store(), None);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("xnat-token.json");
    issue_token(&sim.url(), &file);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the token file is private");
    let first = token_json(&file);
    assert_eq!(first["xdatUserId"], USER);
    let (alias, secret) = (
        first["alias"].as_str().unwrap().to_string(),
        first["secret"].as_str().unwrap().to_string(),
    );

    // No password anywhere: not in the environment it is started with, nor in the daemon's.
    let mount = Mount::start(
        &sim.url(),
        USER,
        "",
        &["--token-file", file.to_str().unwrap()],
    );
    let pid = mount.pid();
    for s in proc_strings(pid, "environ")
        .into_iter()
        .chain(proc_strings(pid, "cmdline"))
    {
        assert!(!s.contains(PASS), "the daemon holds the password: {s}");
        assert!(
            !s.contains(&secret),
            "the daemon shows the token's secret: {s}"
        );
    }
    let tree = walk_files(mount.path());
    assert_eq!(tree.len(), expected.len());

    // A new token in the file, the old one invalidated, every session dropped: the next
    // request logs in again, with the new token.
    issue_token(&sim.url(), &file);
    assert_ne!(token_json(&file)["alias"].as_str().unwrap(), alias);
    let invalidate = Command::new("curl")
        .args(["-sf", "-u"])
        .arg(format!("{USER}:{PASS}"))
        .arg(format!(
            "{}/data/services/tokens/invalidate/{alias}/{secret}",
            sim.url()
        ))
        .output()
        .expect("curl (apt package curl) invalidates the old token");
    assert!(invalidate.status.success(), "the old token invalidated");
    sim.server.expire_sessions();
    let (path, exp) = expected.iter().next().unwrap();
    let bytes = std::fs::read(mount.path().join(path)).expect("a read after the token changed");
    assert_eq!(md5_hex(&bytes), exp.md5);
    assert!(
        !mount.log_text().contains("was refused"),
        "the new token was not used: {}",
        mount.log_text()
    );
}

#[test]
fn a_token_file_others_can_read_is_refused() {
    let sim = Sim::start(small_shape());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    issue_token(&sim.url(), &file);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mnt = tempfile::tempdir().unwrap();
    let out = Command::new(xnatfs_bin())
        .arg("mount")
        .arg(sim.url())
        .arg(mnt.path())
        .arg("--token-file")
        .arg(&file)
        .env_remove("XNAT_PASS")
        .stdin(Stdio::null())
        .output()
        .expect("run xnatfs mount");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("chmod 600"), "{stderr}");
}

#[test]
fn an_idle_mount_keeps_its_session_alive_without_logging_in_again() {
    let dir = tempfile::tempdir().unwrap();
    let requests = dir.path().join("requests.log");
    let sim = Sim::start_with(Some(small_shape()), |c| {
        c.session_timeout = Duration::from_secs(24);
        c.request_log = Some(requests.clone());
    });
    let expected = expected_files(sim.store(), None);
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    assert_eq!(walk_files(mount.path()).len(), expected.len());
    // Idle past the server's 24 s idle timeout.
    std::thread::sleep(Duration::from_secs(32));
    let (path, exp) = expected.iter().next().unwrap();
    let bytes = std::fs::read(mount.path().join(path)).expect("a read after the idle time");
    assert_eq!(md5_hex(&bytes), exp.md5);
    let log = std::fs::read_to_string(&requests).expect("the sim's request log");
    let logins = log
        .lines()
        .filter(|l| l.starts_with("POST /data/JSESSION"))
        .count();
    let beats = log
        .lines()
        .filter(|l| l.starts_with("GET /data/JSESSION"))
        .count();
    assert_eq!(logins, 1, "one login for the mount's life:\n{log}");
    assert!(beats >= 1, "no heartbeat kept the session:\n{log}");
    assert!(
        !log.lines().any(|l| l.contains(" 401 ")),
        "a request met an expired session:\n{log}"
    );
}
