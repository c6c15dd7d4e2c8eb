//! The `xnatfs mount` command against xnat-sim, as users run it: the background mode (returns
//! only once the mount is usable) and the foreground mode `-f`; a wrong password, an unreachable
//! server and a missing mount point give a clear message and a non-zero exit in both modes;
//! `umount`, `fusermount3 -u` and SIGTERM unmount cleanly with the daemon exiting 0; `-o ro` and
//! `--read-only` refuse writes with EROFS.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::mount::{is_mounted, xnatfs_bin, Mount};
use common::sim::*;
use common::which;
use xnat_sim::Shape;

/// `xnatfs mount URL DIR` as the test user with `password` in the environment, no input.
fn mount_command(url: &str, dir: &Path, password: &str) -> Command {
    let mut cmd = Command::new(xnatfs_bin());
    cmd.arg("mount")
        .arg(url)
        .arg(dir)
        .env("XNAT_USER", USER)
        .env("XNAT_PASS", password)
        .env_remove("XNAT_HOST")
        .stdin(Stdio::null());
    cmd
}

/// `xnatfs mount URL DIR …` with the credentials in the environment; waits for it to return.
fn run_mount(url: &str, dir: &Path, cache: &Path, password: &str, extra: &[&str]) -> Output {
    let mut cmd = mount_command(url, dir, password);
    cmd.arg("--cache-dir")
        .arg(cache.join("blocks"))
        .arg("--log-file")
        .arg(cache.join("xnatfs.log"))
        .args(extra)
        // The default spool in the test's folder, not the home.
        .env("XDG_DATA_HOME", cache.join("data"));
    within(Duration::from_secs(60), "xnatfs mount", move || {
        cmd.output().expect("run xnatfs")
    })
}

/// PIDs of processes whose command line names `dir` (the background daemon of a mount there).
fn daemons_of(dir: &Path) -> Vec<u32> {
    let needle = dir.as_os_str().as_encoded_bytes().to_vec();
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            if cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == needle.as_slice())
            {
                pids.push(pid);
            }
        }
    }
    pids
}

/// A mount made in the background mode: unmounted, and its daemon stopped, when dropped.
struct Background {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Background {
    fn new() -> Background {
        Background {
            dir: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
        }
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.cache.path().join("xnatfs.log")).unwrap_or_default()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let dir = self.dir.path();
        if is_mounted(dir) {
            let _ = Command::new("umount").arg(dir).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !daemons_of(dir).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in daemons_of(dir) {
            // SAFETY: plain kill(2) of a daemon this test started, found by its unique path.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        if is_mounted(dir) {
            let _ = Command::new("umount").arg("-l").arg(dir).status();
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn background_mode_returns_once_the_mount_is_usable() {
    let sim = Sim::start(small_shape());
    let b = Background::new();
    let out = run_mount(&sim.url(), b.dir.path(), b.cache.path(), PASS, &[]);
    assert!(
        out.status.success(),
        "xnatfs mount failed: {}\nlog:\n{}",
        stderr(&out),
        b.log()
    );
    // No waiting: the command returned, so the tree is there now.
    assert!(
        is_mounted(b.dir.path()),
        "not mounted when the command returned"
    );
    let top: Vec<_> = std::fs::read_dir(b.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, vec!["SIM01"]);
    let expected = expected_files(sim.store(), None);
    let (path, exp) = expected.iter().next().unwrap();
    assert_eq!(md5_file(&b.dir.path().join(path)).unwrap(), exp.md5);
    let daemons = daemons_of(b.dir.path());
    assert_eq!(daemons.len(), 1, "one background daemon: {daemons:?}");

    // umount ends the daemon.
    let st = Command::new("umount").arg(b.dir.path()).status().unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !daemons_of(b.dir.path()).is_empty() {
        assert!(Instant::now() < deadline, "the daemon outlived its unmount");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!is_mounted(b.dir.path()));
    assert!(b.log().contains("unmounted"), "log:\n{}", b.log());
}

fn refused(url: &str, password: &str, foreground: bool) -> String {
    let b = Background::new();
    let extra: &[&str] = if foreground { &["-f"] } else { &[] };
    let out = run_mount(url, b.dir.path(), b.cache.path(), password, extra);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "mount should fail (foreground {foreground}): {err}"
    );
    assert!(
        !is_mounted(b.dir.path()),
        "a failed mount left a mount behind"
    );
    assert!(
        daemons_of(b.dir.path()).is_empty(),
        "a failed mount left a daemon behind"
    );
    assert!(
        !err.contains(PASS) && !err.contains("wrong-password"),
        "password in: {err}"
    );
    assert!(err.starts_with("xnatfs: "), "one clear line: {err}");
    err
}

#[test]
fn a_wrong_password_is_a_clear_error() {
    let sim = Sim::start(small_shape());
    for foreground in [false, true] {
        let err = refused(&sim.url(), "wrong-password", foreground);
        assert!(
            err.contains("cannot log in") && err.contains(USER),
            "foreground {foreground}: {err}"
        );
        let lower = err.to_lowercase();
        assert!(
            lower.contains("password") || lower.contains("credentials") || lower.contains("401"),
            "says why: {err}"
        );
    }
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for foreground in [false, true] {
        let err = refused(&url, PASS, foreground);
        assert!(err.contains(&url), "names the server: {err}");
        let lower = err.to_lowercase();
        assert!(
            lower.contains("connect") || lower.contains("reach") || lower.contains("refused"),
            "says it could not connect: {err}"
        );
    }
}

#[test]
fn a_missing_mount_point_is_a_clear_error() {
    let sim = Sim::start(small_shape());
    let cache = tempfile::tempdir().unwrap();
    let missing = cache.path().join("no/such/dir");
    for extra in [&[][..], &["-f"][..]] {
        let out = run_mount(&sim.url(), &missing, cache.path(), PASS, extra);
        let err = stderr(&out);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains(&missing.display().to_string()),
            "names the path: {err}"
        );
        assert!(err.contains("does not exist"), "says why: {err}");
    }
}

#[test]
fn bad_mount_points_and_an_https_url_to_http_are_clear_errors() {
    let sim = Sim::start(small_shape());
    let cache = tempfile::tempdir().unwrap();
    let file = cache.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let full = tempfile::tempdir().unwrap();
    std::fs::write(full.path().join("precious.txt"), b"mine").unwrap();
    let mounted = Mount::start(&sim.url(), USER, PASS, &[]);
    let cases: [(&Path, &str); 3] = [
        (&file, "is a file, not a folder"),
        (full.path(), "is not empty"),
        (mounted.path(), "already a mount point (fuse.xnatfs)"),
    ];
    for (dir, says) in cases {
        for extra in [&[][..], &["-f"][..]] {
            let out = run_mount(&sim.url(), dir, cache.path(), PASS, extra);
            let err = stderr(&out);
            assert!(!out.status.success(), "{dir:?} {extra:?}: {err}");
            assert!(err.contains(says), "{dir:?} {extra:?}: {err}");
        }
    }
    assert_eq!(
        std::fs::read(full.path().join("precious.txt")).unwrap(),
        b"mine"
    );
    // Asked for, a non-empty folder is mounted over.
    let out = run_mount(
        &sim.url(),
        full.path(),
        cache.path(),
        PASS,
        &["-o", "nonempty"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(is_mounted(full.path()));
    assert!(Command::new("umount")
        .arg(full.path())
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !daemons_of(full.path()).is_empty() {
        assert!(Instant::now() < deadline, "the daemon outlived its unmount");
        std::thread::sleep(Duration::from_millis(50));
    }
    // https:// to a server that speaks plain HTTP.
    let https = sim.url().replacen("http://", "https://", 1);
    let err = refused(&https, PASS, false);
    assert!(
        err.contains("plain HTTP") && err.contains("http://"),
        "{err}"
    );
}

#[test]
fn umount_fusermount_and_sigterm_unmount_cleanly() {
    let sim = Sim::start(small_shape());
    let unmounts: [(&str, &[&str]); 4] = [
        ("umount", &["umount"]),
        ("fusermount3 -u", &["fusermount3", "-u"]),
        ("SIGTERM", &["SIGTERM"]),
        ("SIGINT", &["SIGINT"]),
    ];
    for (how, command) in unmounts {
        let mut m = Mount::start(&sim.url(), USER, PASS, &[]);
        let dir: PathBuf = m.path().to_path_buf();
        assert!(std::fs::read_dir(&dir).unwrap().count() > 0);
        let status = if command[0].starts_with("SIG") {
            let signal = if command[0] == "SIGTERM" {
                libc::SIGTERM
            } else {
                libc::SIGINT
            };
            // SAFETY: kill(2) of the daemon this test started, by its PID.
            assert_eq!(unsafe { libc::kill(m.pid() as i32, signal) }, 0);
            m.unmount_with(&["true"])
        } else {
            if command[0] == "fusermount3" && which("fusermount3").is_none() {
                panic!("fusermount3 not found: install the apt package `fuse3`");
            }
            m.unmount_with(command)
        };
        let status = status.unwrap_or_else(|| {
            panic!("{how}: the daemon had to be killed; log:\n{}", m.log_text())
        });
        assert!(
            status.success(),
            "{how}: the daemon exited with {status}; log:\n{}",
            m.log_text()
        );
        assert!(!is_mounted(&dir), "{how}: still mounted");
        let log = m.log_text();
        assert!(
            !log.contains("WARN"),
            "{how}: a clean unmount logged a warning:\n{log}"
        );
    }
}

#[test]
fn read_only_refuses_writes_with_erofs() {
    let sim = Sim::start(small_shape());
    let expected = expected_files(sim.store(), None);
    let (file, exp) = expected.iter().next().unwrap();
    for flags in [&["-o", "ro"][..], &["--read-only"][..]] {
        let m = Mount::start(&sim.url(), USER, PASS, flags);
        let existing = m.path().join(file);
        let folder = existing.parent().unwrap().to_path_buf();
        let erofs = |what: &str, r: std::io::Result<()>| {
            let err = r.expect_err(what);
            assert_eq!(
                err.raw_os_error(),
                Some(libc::EROFS),
                "{flags:?} {what}: {err}"
            );
        };
        erofs(
            "open for write",
            std::fs::OpenOptions::new()
                .write(true)
                .open(&existing)
                .map(|_| ()),
        );
        erofs(
            "create",
            std::fs::File::create(folder.join("new.txt")).map(|_| ()),
        );
        erofs("mkdir", std::fs::create_dir(folder.join("newdir")));
        erofs(
            "mkdir subject",
            std::fs::create_dir(m.path().join("SIM01/NEW_SUBJ")),
        );
        erofs("remove", std::fs::remove_file(&existing));
        let touch = Command::new("touch")
            .arg(folder.join("touched"))
            .output()
            .unwrap();
        assert!(!touch.status.success());
        assert!(
            String::from_utf8_lossy(&touch.stderr).contains("Read-only file system"),
            "touch: {}",
            String::from_utf8_lossy(&touch.stderr)
        );
        // Reading still works.
        assert_eq!(md5_file(&existing).unwrap(), exp.md5);
    }
}

#[test]
fn sigterm_with_a_file_open_detaches_and_exits_once_it_is_closed() {
    let sim = Sim::start(small_shape());
    let expected = expected_files(sim.store(), None);
    let mut m = Mount::start(&sim.url(), USER, PASS, &[]);
    let dir = m.path().to_path_buf();
    let open = File::open(dir.join(expected.keys().next().unwrap())).unwrap();
    // SAFETY: kill(2) of the daemon this test started, by its PID.
    assert_eq!(unsafe { libc::kill(m.pid() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_mounted(&dir) {
        assert!(
            Instant::now() < deadline,
            "a busy mount was not detached on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(open);
    let status = m
        .unmount_with(&["true"])
        .unwrap_or_else(|| panic!("the daemon had to be killed; log:\n{}", m.log_text()));
    assert!(status.success(), "exit {status}; log:\n{}", m.log_text());
}

#[test]
fn an_unknown_project_is_a_clear_error() {
    let sim = Sim::start(small_shape());
    for foreground in [false, true] {
        let b = Background::new();
        let mut extra = vec!["--project", "NOPE"];
        if foreground {
            extra.push("-f");
        }
        let out = run_mount(&sim.url(), b.dir.path(), b.cache.path(), PASS, &extra);
        let err = stderr(&out);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("NOPE") && err.contains("404"), "{err}");
        assert!(!is_mounted(b.dir.path()));
    }
}

#[test]
fn mount_xnatfs_helper_name_takes_mount8_options() {
    let sim = Sim::start(Shape {
        projects: 2,
        subjects: 1,
        scans: 1,
        files: 1,
        file_size: 1000,
        ..Default::default()
    });
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("mount.xnatfs");
    std::os::unix::fs::symlink(xnatfs_bin(), &helper).unwrap();
    let b = Background::new();
    let options = format!(
        "ro,noauto,_netdev,project=SIM02,username={USER},cache_dir={},log_file={}",
        b.cache.path().join("blocks").display(),
        b.cache.path().join("xnatfs.log").display()
    );
    let mut cmd = Command::new(&helper);
    cmd.arg(sim.url())
        .arg(b.dir.path())
        .arg("-o")
        .arg(&options)
        .env("XNAT_PASS", PASS)
        .env_remove("XNAT_USER")
        .stdin(Stdio::null());
    let out = within(Duration::from_secs(60), "mount.xnatfs", move || {
        cmd.output().unwrap()
    });
    assert!(
        out.status.success(),
        "mount.xnatfs: {}\nlog:\n{}",
        stderr(&out),
        b.log()
    );
    let top: Vec<_> = std::fs::read_dir(b.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, vec!["SIM02"]);
    let err = std::fs::create_dir(b.dir.path().join("SIM02/X")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
}

#[test]
fn the_daemon_holds_no_password_and_its_log_is_private() {
    let sim = Sim::start(small_shape());
    let b = Background::new();
    let out = run_mount(&sim.url(), b.dir.path(), b.cache.path(), PASS, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let daemons = daemons_of(b.dir.path());
    assert_eq!(daemons.len(), 1, "{daemons:?}");
    let environ = std::fs::read(format!("/proc/{}/environ", daemons[0])).unwrap();
    for var in environ.split(|b| *b == 0) {
        let var = String::from_utf8_lossy(var);
        assert!(
            !var.starts_with("XNAT_PASS=") && !var.contains(PASS),
            "the daemon's environment holds the password: {var}"
        );
    }
    let log = b.cache.path().join("xnatfs.log");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&log).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the log file's mode");
}

#[test]
fn a_cache_folder_xnatfs_did_not_make_is_refused_and_left_alone() {
    let sim = Sim::start(small_shape());
    let b = Background::new();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("tmp")).unwrap();
    std::fs::write(home.path().join("tmp/draft.txt"), b"mine").unwrap();
    std::fs::write(home.path().join("notes.txt"), b"mine").unwrap();
    let before = std::fs::metadata(home.path()).unwrap().permissions();
    let option = format!("cache_dir={}", home.path().display());
    let out = run_mount(
        &sim.url(),
        b.dir.path(),
        b.cache.path(),
        PASS,
        &["-o", &option],
    );
    assert!(!out.status.success(), "mounted with a foreign cache folder");
    let err = stderr(&out);
    assert!(
        err.contains("notes.txt") && err.contains("cache folder"),
        "{err}"
    );
    assert!(!is_mounted(b.dir.path()));
    assert_eq!(
        std::fs::read(home.path().join("tmp/draft.txt")).unwrap(),
        b"mine"
    );
    assert_eq!(
        std::fs::metadata(home.path()).unwrap().permissions(),
        before
    );
}

#[test]
fn with_allow_other_other_users_read_but_change_nothing() {
    let Some(setpriv) = which("setpriv") else {
        panic!("setpriv (util-linux) is needed to act as another user");
    };
    let sim = Sim::start(small_shape());
    let b = Background::new();
    let out = run_mount(
        &sim.url(),
        b.dir.path(),
        b.cache.path(),
        PASS,
        &["--allow-other"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = expected_files(sim.store(), None);
    let (path, exp) = expected
        .iter()
        .find(|(p, _)| p.contains("/NIFTI/"))
        .unwrap();
    let file = b.dir.path().join(path);
    let as_nobody = |script: &str| {
        Command::new(&setpriv)
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
                script,
            ])
            .output()
            .unwrap()
    };
    let read = as_nobody(&format!("md5sum '{}'", file.display()));
    assert!(
        read.status.success(),
        "another user cannot read: {}",
        stderr(&read)
    );
    assert!(String::from_utf8_lossy(&read.stdout).starts_with(&exp.md5));
    let dir = file.parent().unwrap();
    for (what, script) in [
        (
            "create",
            format!("echo x > '{}/planted.txt'", dir.display()),
        ),
        ("overwrite", format!("echo x > '{}'", file.display())),
        (
            "mkdir",
            format!("mkdir '{}/SIM01/NEW_SUBJECT'", b.dir.path().display()),
        ),
    ] {
        let out = as_nobody(&script);
        assert!(!out.status.success(), "another user could {what}");
        assert!(
            stderr(&out).contains("Permission denied"),
            "{what}: {}",
            stderr(&out)
        );
    }
    assert!(sim
        .store()
        .read(|a| a.subjects.values().all(|s| s.label != "NEW_SUBJECT")));
}

/// The filesystem type of the mount at `path`, from /proc/self/mountinfo.
fn mount_type(path: &Path) -> Option<String> {
    let target = path.to_string_lossy().to_string();
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(target.as_str()))?;
    let after = line.split(" - ").nth(1)?;
    after.split(' ').next().map(str::to_string)
}

#[test]
fn a_foreground_log_on_a_file_is_plain_rust_log_is_honoured_and_the_mount_is_fuse_xnatfs() {
    let sim = Sim::start(small_shape());
    let b = Background::new();
    let err_path = b.cache.path().join("stderr.txt");
    let mut child = mount_command(&sim.url(), b.dir.path(), PASS)
        .arg("-f")
        .arg("--cache-dir")
        .arg(b.cache.path().join("blocks"))
        .arg("--spool-dir")
        .arg(b.cache.path().join("spool"))
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "xnatfs=debug")
        .stdout(Stdio::null())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("start xnatfs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !is_mounted(b.dir.path()) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "xnatfs exited with {status}: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "not mounted within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(mount_type(b.dir.path()).as_deref(), Some("fuse.xnatfs"));
    assert!(std::fs::read_dir(b.dir.path()).unwrap().count() > 0);
    assert!(Command::new("umount")
        .arg(b.dir.path())
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon outlived its unmount by 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&err_path).unwrap();
    assert!(status.success(), "exit {status}: {text}");
    assert!(
        !text.contains('\x1b'),
        "colour codes in a log on a file:\n{text}"
    );
    assert!(
        text.contains("DEBUG"),
        "RUST_LOG=xnatfs=debug ignored:\n{text}"
    );
    assert!(
        !text.contains("WARN"),
        "a clean unmount logged a warning:\n{text}"
    );
}

#[test]
fn a_cache_folder_in_use_is_refused_and_default_caches_are_per_server() {
    let sim = Sim::start(small_shape());
    let other = Sim::start(small_shape());
    // Two mounts of one cache folder: the second (even read-only) is refused, saying why.
    let first = Mount::start(&sim.url(), USER, PASS, &[]);
    let b = Background::new();
    let out = mount_command(&sim.url(), b.dir.path(), PASS)
        .arg("--read-only")
        .arg("--cache-dir")
        .arg(first.cache.path().join("blocks"))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a second mount shared a cache folder"
    );
    let err = stderr(&out);
    assert!(
        err.contains("in use") && err.contains("--cache-dir"),
        "{err}"
    );
    assert!(!is_mounted(b.dir.path()));
    drop(first);

    // Without --cache-dir, mounts of two servers each get their own default cache.
    let xdg = tempfile::tempdir().unwrap();
    let mounts: Vec<Background> = [&sim, &other]
        .iter()
        .map(|s| {
            let b = Background::new();
            let out = mount_command(&s.url(), b.dir.path(), PASS)
                .arg("--spool-dir")
                .arg(b.cache.path().join("spool"))
                .env("XDG_CACHE_HOME", xdg.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            b
        })
        .collect();
    let caches: Vec<String> = std::fs::read_dir(xdg.path().join("xnatfs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(caches.len(), 2, "{caches:?}");
    assert!(
        caches
            .iter()
            .all(|c| c.starts_with(&format!("{USER}@127.0.0.1"))),
        "{caches:?}"
    );
    drop(mounts);
}
