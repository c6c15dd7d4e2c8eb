//! `scripts/install.sh` into a temporary PREFIX and SBIN, with the test build of the binary
//! (`XNATFS_BIN`, so no release build): the binary, the `mount.xnatfs` symlink, the man pages
//! (each with its `.TH` line, rendered by `man -l` without a warning), the bash completion
//! (loaded by bash, completing a flag of `xnatfs mount`), the zsh and fish completions; then
//! `--uninstall` removes every one of them, and leaves a `mount.xnatfs` that is not its own.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::which;

const PAGES: [&str; 6] = [
    "man1/xnatfs.1",
    "man1/xnatfs-mount.1",
    "man1/xnatfs-status.1",
    "man1/xnatfs-token.1",
    "man1/xnatfs-warm.1",
    "man8/mount.xnatfs.8",
];
const BASH: &str = "share/bash-completion/completions/xnatfs";
const ZSH: &str = "share/zsh/site-functions/_xnatfs";
const FISH: &str = "share/fish/vendor_completions.d/xnatfs.fish";

fn install_sh(prefix: &Path, sbin: &Path, args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .arg(prefix)
        .env("XNATFS_BIN", env!("CARGO_BIN_EXE_xnatfs"))
        .env("SBIN", sbin)
        .output()
        .expect("run bash scripts/install.sh");
    assert!(
        out.status.success(),
        "install.sh {args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file and symlink under `root`, relative.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn install_puts_binary_helper_pages_and_completions_in_place_and_uninstall_removes_them() {
    assert!(
        which("man").is_some(),
        "`man` is needed to render the installed pages: install the apt package man-db"
    );
    let root = tempfile::tempdir().unwrap();
    let prefix = root.path().join("prefix");
    let sbin = root.path().join("sbin");
    install_sh(&prefix, &sbin, &[]);

    let bin = prefix.join("bin/xnatfs");
    assert_eq!(mode(&bin), 0o755);
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        text(&version.stdout).trim(),
        format!("xnatfs {}", env!("CARGO_PKG_VERSION"))
    );
    let helper = sbin.join("mount.xnatfs");
    assert_eq!(std::fs::read_link(&helper).unwrap(), bin);

    for page in PAGES {
        let path = prefix.join("share/man").join(page);
        assert_eq!(mode(&path), 0o644, "{page}");
        // The plain parse: a title line naming the page and its section.
        let name = page.split('/').nth(1).unwrap();
        let (title, section) = name.rsplit_once('.').unwrap();
        let roff = std::fs::read_to_string(&path).unwrap();
        assert!(
            roff.lines()
                .any(|l| l.starts_with(&format!(".TH {title} {section} "))),
            "{page} has no .TH line for {title}({section}):\n{roff}"
        );
        // And man(1)'s own rendering, in plain ASCII and wide enough not to break words.
        let man = Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("LC_ALL", "C")
            .env("MANWIDTH", "200")
            .env("MAN_KEEP_FORMATTING", "")
            .output()
            .unwrap();
        let shown = text(&man.stdout);
        assert!(man.status.success(), "man -l {page}: {}", text(&man.stderr));
        assert!(
            man.stderr.is_empty(),
            "man -l {page} warned: {}",
            text(&man.stderr)
        );
        assert!(
            shown.contains("NAME") && shown.contains(title),
            "{page}:\n{shown}"
        );
        if title.ends_with("mount") || title.starts_with("mount.") {
            for option in [
                "--cache-dir <DIR>",
                "--read-only",
                "noauto,user,username=alice",
            ] {
                assert!(shown.contains(option), "{page} lacks {option}:\n{shown}");
            }
        }
    }

    // bash loads the completion and completes a flag of `xnatfs mount` with it.
    let bash = prefix.join(BASH);
    assert_eq!(mode(&bash), 0o644);
    let script = format!(
        "source '{}' && complete -p xnatfs && COMP_WORDS=(xnatfs mount --cache-d) && \
         COMP_CWORD=2 && _xnatfs xnatfs --cache-d mount && echo \"offered: ${{COMPREPLY[*]}}\"",
        bash.display()
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert!(out.status.success(), "bash: {}{said}", text(&out.stderr));
    assert!(said.contains("-F _xnatfs xnatfs"), "{said}");
    assert!(said.contains("offered: --cache-dir"), "{said}");
    let zsh = std::fs::read_to_string(prefix.join(ZSH)).unwrap();
    assert!(zsh.starts_with("#compdef xnatfs"), "{zsh}");
    assert!(zsh.contains("--cache-dir"));
    let fish = std::fs::read_to_string(prefix.join(FISH)).unwrap();
    assert!(fish.contains("complete -c xnatfs") && fish.contains("cache-dir"));

    let mut expected: Vec<PathBuf> = PAGES
        .iter()
        .map(|p| Path::new("prefix/share/man").join(p))
        .chain(
            ["bin/xnatfs", BASH, ZSH, FISH]
                .iter()
                .map(|p| Path::new("prefix").join(p)),
        )
        .chain([PathBuf::from("sbin/mount.xnatfs")])
        .collect();
    expected.sort();
    assert_eq!(files_under(root.path()), expected, "what install put there");

    install_sh(&prefix, &sbin, &["--uninstall"]);
    assert_eq!(
        files_under(root.path()),
        Vec::<PathBuf>::new(),
        "left after --uninstall"
    );
}

#[test]
fn uninstall_leaves_a_mount_xnatfs_that_is_not_its_own() {
    let root = tempfile::tempdir().unwrap();
    let prefix = root.path().join("prefix");
    let sbin = root.path().join("sbin");
    install_sh(&prefix, &sbin, &[]);
    let helper = sbin.join("mount.xnatfs");
    let elsewhere = root.path().join("other/xnatfs");
    std::fs::remove_file(&helper).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &helper).unwrap();

    let out = install_sh(&prefix, &sbin, &["--uninstall"]);
    assert_eq!(std::fs::read_link(&helper).unwrap(), elsewhere);
    assert!(
        text(&out.stderr).contains("left") && text(&out.stderr).contains("not a symlink to"),
        "says why it stayed: {}",
        text(&out.stderr)
    );
    assert_eq!(
        files_under(root.path()),
        [PathBuf::from("sbin/mount.xnatfs")],
        "everything else removed"
    );
}
