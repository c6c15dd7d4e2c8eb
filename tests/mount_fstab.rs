//! xnatfs through util-linux's real mount(8) and umount(8), as root and as a user with an fstab
//! line, in a private mount namespace so that nothing reaches the machine's own mounts.
//!
//! The test makes (or takes over) the user `xnatfs-test` with its home in the test's folder and an
//! `~/.netrc` for the sim, and runs `tests/mount_fstab.sh` as PID 1 of a new mount and PID
//! namespace (`unshare --mount --pid --fork --kill-child`). There, over the machine's own files
//! and for that namespace only: `/etc/fstab` is a file naming the user's mount point with
//! `noauto,user`, `/sbin` gets `mount.xnatfs` (a symlink to the test binary, by an overlay) and
//! `/run` is empty (mount(8) keeps its utab there). Then root runs `mount -t xnatfs URL DIR -o
//! ro,…`, and the user runs `mount DIR`: the setuid mount(8) reads the fstab line and runs the
//! helper as the user, and xnatfs mounts through the setuid fusermount3. The user's environment
//! has no HOME (as under cron or a bare `su`), so its netrc, cache and spool are found through the
//! password database. Each mount must list the sim's projects,
//! read a file's right bytes, show as type fuse.xnatfs (root's read-only, the user's with its
//! user_id), and end with umount(8) (the user's own, allowed for FUSE mounts by their user_id).
//!
//! Limit: where /dev/fuse is 0600 (this CI's containers; a host's is 0666), no FUSE filesystem
//! mounts as a user: libfuse and fuser both open /dev/fuse before they try fusermount3. The
//! script then puts a 0666 node of the same device over /dev/fuse inside the namespace, as a host
//! has it, and says so in its output.
//!
//! Killing `unshare` (on a panic or a time-out) kills the namespace's PID 1 and so every process
//! in it, daemons included, and with them go its mounts; the user is deleted when the test ends.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::mount::xnatfs_bin;
use common::sim::*;
use common::which;

const TEST_USER: &str = "xnatfs-test";
/// The longest the namespace script may take (it takes about a second).
const LIMIT: Duration = Duration::from_secs(120);

/// The user `xnatfs-test` with its home at a given folder: made, or taken over from a run that
/// died before deleting it; deleted when dropped.
struct TestUser {
    uid: u32,
}

impl TestUser {
    fn with_home(home: &Path) -> TestUser {
        let exists = Command::new("id")
            .arg(TEST_USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run id")
            .success();
        let mut cmd = if exists {
            let mut c = Command::new("usermod");
            c.arg("--home").arg(home);
            c
        } else {
            let mut c = Command::new("useradd");
            c.args([
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg("--home-dir")
            .arg(home);
            c
        };
        let out = cmd.arg(TEST_USER).output().expect("run useradd/usermod");
        assert!(
            out.status.success(),
            "cannot make the user {TEST_USER}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = |flag: &str| -> u32 {
            let out = Command::new("id")
                .arg(flag)
                .arg(TEST_USER)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let user = TestUser { uid: id("-u") };
        let gid = id("-g");
        for path in [home, &home.join(".netrc")] {
            std::os::unix::fs::chown(path, Some(user.uid), Some(gid)).unwrap();
        }
        user
    }

    fn own(&self, path: &Path) {
        std::os::unix::fs::chown(path, Some(self.uid), None).unwrap();
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // The namespace's processes may still be dying: userdel refuses a user in use (8).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Command::new("userdel").arg(TEST_USER).output() {
                Ok(out) if out.status.success() => return,
                Ok(out) if out.status.code() == Some(8) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(out) => {
                    eprintln!(
                        "userdel {TEST_USER}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    return;
                }
                Err(e) => {
                    eprintln!("userdel {TEST_USER}: {e}");
                    return;
                }
            }
        }
    }
}

/// `unshare … bash tests/mount_fstab.sh`: killed, and with it its whole namespace, when dropped.
struct Namespace {
    child: Child,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // --kill-child: the namespace's PID 1 gets SIGKILL when unshare dies, and takes every
        // process of the namespace with it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a test that mounts as root and adds a user needs, each missing one named.
fn check_prerequisites() {
    // SAFETY: geteuid(2) has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test runs as root: it adds a user and mounts in a private namespace"
    );
    assert!(
        Path::new("/dev/fuse").exists(),
        "this test mounts a FUSE filesystem and needs /dev/fuse"
    );
    for (tool, package) in [
        ("unshare", "util-linux"),
        ("setpriv", "util-linux"),
        ("mount", "mount"),
        ("umount", "mount"),
        ("useradd", "passwd"),
        ("usermod", "passwd"),
        ("userdel", "passwd"),
        ("mknod", "coreutils"),
        ("md5sum", "coreutils"),
    ] {
        assert!(
            which(tool).is_some(),
            "{tool} not found: install the apt package {package}"
        );
    }
    for setuid in ["mount", "umount", "fusermount3"] {
        let path = which(setuid).unwrap_or_else(|| {
            panic!("{setuid} not found: install the apt package fuse3 (fusermount3) or mount")
        });
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert!(
            mode & 0o4000 != 0,
            "{} is not setuid root, so a user cannot mount with it",
            path.display()
        );
    }
}

/// The options of a line of /proc/self/mounts, once its source, mount point and type are checked.
fn fuse_xnatfs_options<'a>(line: &'a str, url: &str, dir: &Path) -> &'a str {
    let fields: Vec<&str> = line.split(' ').collect();
    let want = [
        format!("xnatfs:{url}"),
        dir.display().to_string(),
        "fuse.xnatfs".to_string(),
    ];
    assert!(
        fields.len() > 3 && fields[..3] == want,
        "not an xnatfs mount of {url} at {}: {line:?}",
        dir.display()
    );
    fields[3]
}

#[test]
fn mount_t_xnatfs_as_root_and_an_fstab_user_line_as_a_user() {
    check_prerequisites();
    let sim = Sim::start(small_shape());
    let expected = expected_files(sim.store(), None);
    let (file, exp) = expected.iter().next().expect("a file in the sim");
    let mut projects: Vec<String> = sim.store().read(|a| {
        a.projects
            .keys()
            .filter(|p| a.can_access(USER, p))
            .cloned()
            .collect()
    });
    projects.sort();
    let url = sim.url();

    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // The user must reach its home and mount point through the test's folder.
    std::fs::set_permissions(w, std::fs::Permissions::from_mode(0o755)).unwrap();
    let host = url
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let netrc = format!("machine {host} login {USER} password {PASS}\n");
    for dir in ["home", "usermnt", "rootmnt", "root", "sbin"] {
        std::fs::create_dir(w.join(dir)).unwrap();
    }
    for path in [w.join("root.netrc"), w.join("home/.netrc")] {
        std::fs::write(&path, &netrc).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // The binary in the test's folder, which the user can reach wherever the checkout is.
    std::fs::create_dir(w.join("bin")).unwrap();
    let bin = w.join("bin/xnatfs");
    if std::fs::hard_link(xnatfs_bin(), &bin).is_err() {
        std::fs::copy(xnatfs_bin(), &bin).expect("copy the xnatfs binary");
    }
    std::os::unix::fs::symlink(&bin, w.join("sbin/mount.xnatfs")).unwrap();
    let fstab = format!(
        "# tests/mount_fstab.rs, in its own mount namespace only\n\
         {url}  {}  xnatfs  noauto,user,log_file={}  0 0\n",
        w.join("usermnt").display(),
        w.join("home/xnatfs.log").display()
    );
    std::fs::write(w.join("fstab"), fstab).unwrap();
    let user = TestUser::with_home(&w.join("home"));
    user.own(&w.join("usermnt"));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mount_fstab.sh");
    let log = w.join("namespace.log");
    let mut ns = Namespace {
        child: Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "bash",
            ])
            .arg(&script)
            .env("WORK", w)
            .env("URL", &url)
            .env("BIN", &bin)
            .env("TEST_USER", TEST_USER)
            .env("FILE", file)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(w.join("namespace.err")).unwrap())
            .spawn()
            .expect("run unshare"),
    };
    let output = || {
        format!(
            "{}{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            std::fs::read_to_string(w.join("namespace.err")).unwrap_or_default()
        )
    };
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = ns.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the namespace script did not finish within {LIMIT:?}:\n{}",
            output()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = output();
    let daemon_logs = || {
        format!(
            "root's log:\n{}\nthe user's log:\n{}",
            std::fs::read_to_string(w.join("root/xnatfs.log")).unwrap_or_default(),
            std::fs::read_to_string(w.join("home/xnatfs.log")).unwrap_or_default()
        )
    };
    assert!(
        status.success(),
        "the namespace script failed ({status}):\n{text}\n{}",
        daemon_logs()
    );
    let said: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(key, _)| {
            key.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    let value = |key: &str| -> &str {
        said.get(key)
            .copied()
            .unwrap_or_else(|| panic!("no {key} line in:\n{text}"))
            .trim()
    };
    let listing = projects.join(" ");

    // root: mount -t xnatfs URL DIR -o ro,…
    let options = fuse_xnatfs_options(value("ROOT_MOUNT"), &url, &w.join("rootmnt"));
    assert!(
        options.split(',').any(|o| o == "ro"),
        "-o ro did not reach the mount: {options}"
    );
    assert!(options.contains("user_id=0,"), "{options}");
    assert_eq!(value("ROOT_LS"), listing, "{text}");
    assert_eq!(value("ROOT_MD5"), exp.md5, "{text}");
    assert_eq!(value("ROOT_AFTER"), "[]", "{text}");

    // The user: mount DIR from its fstab line.
    if let Some(denied) = text.lines().find_map(|l| l.strip_prefix("USER_DENIED ")) {
        // This machine's /dev/fuse is closed to users: the refusal names it, not the folder.
        assert!(denied.contains("/dev/fuse"), "{text}");
    }
    assert_eq!(value("USER_ID"), user.uid.to_string(), "{text}");
    let options = fuse_xnatfs_options(value("USER_MOUNT"), &url, &w.join("usermnt"));
    assert!(
        options.contains(&format!("user_id={},", user.uid)),
        "not the user's mount: {options}"
    );
    assert_eq!(value("USER_LS"), listing, "{text}");
    assert_eq!(value("USER_MD5"), exp.md5, "{text}");
    // Without HOME, its cache went to the home the password database names.
    let port = url.rsplit(':').next().unwrap();
    assert!(
        value("USER_CACHE").contains(USER) && value("USER_CACHE").contains(port),
        "no per-server cache in the user's home: {text}"
    );
    assert_eq!(value("USER_AFTER"), "[]", "{text}");
    let log = std::fs::read_to_string(w.join("home/xnatfs.log")).unwrap();
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "the user's mount logged a problem:\n{log}"
    );
    drop(ns);
    drop(user);
}
