//! `xnatfs generate …`: the man pages and shell completions, made from the same clap definitions
//! that parse the command line, so they cannot drift from it. Hidden from `--help`;
//! `scripts/install.sh` runs it to put the pages and completions in place.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::{Arg, ArgAction, CommandFactory};

use crate::cli::{Cli, Generate};

/// Run `xnatfs generate …`: exit 0, or 1 with the reason on standard error.
pub fn run(what: &Generate) -> ExitCode {
    let result = match what {
        Generate::Man { dir } => man_pages(dir),
        Generate::Completions { shell } => {
            let mut stdout = std::io::stdout().lock();
            completions(*shell, &mut stdout).map_err(|e| format!("standard output: {e}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xnatfs: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Write the completion script of `shell`.
pub fn completions(shell: clap_complete::Shell, w: &mut dyn Write) -> std::io::Result<()> {
    clap_complete::generate(shell, &mut completed_command(), "xnatfs", w);
    w.flush()
}

/// The command line that completions offer: without the hidden subcommands, which clap_complete
/// would offer all the same.
fn completed_command() -> clap::Command {
    let full = Cli::command();
    let visible: Vec<clap::Command> = full
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    clap::Command::new("xnatfs")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .subcommands(visible)
}

/// Write `xnatfs.1`, one page per visible subcommand (`xnatfs-mount.1`, `xnatfs-status.1`, …) and
/// `mount.xnatfs.8` into `dir`.
pub fn man_pages(dir: &Path) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("writing man pages to {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build(); // names the subcommands `xnatfs-mount`, … for their pages
    let mut pages = vec![(cli.clone(), "1")];
    pages.extend(
        cli.get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| (s.clone(), "1")),
    );
    pages.push((helper_command(), "8"));
    for (cmd, section) in pages {
        let page = page(cmd, section).map_err(failed)?;
        std::fs::write(dir.join(page.0), page.1).map_err(failed)?;
    }
    Ok(())
}

/// The file name and roff text of `cmd`'s page: clap_mangen's, but with the text after the
/// options (the mount options and the fstab example) kept line for line in a NOTES section,
/// where clap_mangen would fill it into one paragraph.
fn page(cmd: clap::Command, section: &str) -> std::io::Result<(String, String)> {
    let notes = cmd
        .get_after_long_help()
        .or(cmd.get_after_help())
        .map(|n| n.to_string());
    let man = clap_mangen::Man::new(cmd.after_help(None).after_long_help(None))
        .section(section)
        .source(concat!("xnatfs ", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render(&mut page)?;
    // The help texts' ellipses as three dots: man in an ASCII locale has no glyph for `…`.
    let mut page = String::from_utf8(page)
        .map_err(std::io::Error::other)?
        .replace('…', "...");
    if let Some(notes) = notes {
        let mut roff = String::from(".SH NOTES\n.nf\n");
        for line in notes.lines() {
            roff.push_str(&roff_text(line));
            roff.push('\n');
        }
        roff.push_str(".fi\n");
        let at = page.find("\n.SH VERSION\n").map_or(page.len(), |i| i + 1);
        page.insert_str(at, &roff);
    }
    Ok((man.get_filename(), page))
}

/// One line of plain text as roff: backslashes and hyphens escaped, and a line that would read
/// as a request (a leading `.` or `'`) guarded.
fn roff_text(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// The `mount` subcommand as mount(8) runs it, for its page only: named `mount.xnatfs`, its `-f`
/// being mount(8)'s fake rather than the foreground (see `run::HelperFlags`), which there is
/// `-o foreground`.
fn helper_command() -> clap::Command {
    let mount = Cli::command()
        .find_subcommand("mount")
        .expect("the mount subcommand")
        .clone();
    let flag = |name: &'static str, short: char, help: &'static str| {
        Arg::new(name)
            .short(short)
            .action(ArgAction::SetTrue)
            .help(help)
            .help_heading("mount(8) helper flags")
    };
    mount
        .name("mount.xnatfs")
        .display_name("mount.xnatfs")
        .bin_name("mount.xnatfs")
        .about("The mount(8) helper of xnatfs: mount an XNAT server, as `xnatfs mount` does")
        .mut_arg("foreground", |a| {
            a.short(None)
                .help("Stay in the foreground (also `-o foreground`; `-f` is mount(8)'s fake here)")
        })
        .arg(flag(
            "sloppy-helper",
            's',
            "Sloppy: ignore unknown -o options",
        ))
        .arg(flag(
            "fake",
            'f',
            "Fake: check everything, mount nothing, exit 0",
        ))
        .arg(flag(
            "no-mtab",
            'n',
            "Accepted and ignored: there is no mtab to write",
        ))
        .arg(flag("verbose", 'v', "Say what is mounted where"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_cover_every_subcommand_and_the_mount_options() {
        let dir = tempfile::tempdir().unwrap();
        man_pages(dir.path()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "mount.xnatfs.8",
                "xnatfs-mount.1",
                "xnatfs-status.1",
                "xnatfs-token.1",
                "xnatfs-warm.1",
                "xnatfs.1"
            ]
        );
        let page = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        let mount = page("xnatfs-mount.1");
        assert!(mount.contains("\n.TH xnatfs-mount 1 "), "{mount}");
        // `-f` is the foreground for `xnatfs mount`, mount(8)'s fake for `mount.xnatfs`.
        let short_foreground = "\\fB\\-f\\fR, \\fB\\-\\-foreground";
        for option in ["cache\\-dir", "read\\-only", short_foreground] {
            assert!(mount.contains(option), "xnatfs-mount.1 lacks {option}");
        }
        // The notes keep their lines: the fstab example is one line of its own.
        let notes = &mount[mount.find(".SH NOTES\n.nf\n").expect("a NOTES section")..];
        assert!(notes.ends_with("\n.fi\n"), "{notes}");
        assert!(
            notes
                .lines()
                .any(|l| l.trim_start().starts_with("https://xnat.example.org ")
                    && l.contains("noauto,user")),
            "{notes}"
        );
        let top = page("xnatfs.1");
        assert!(top.contains("xnatfs\\-mount(1)"), "{top}");
        assert!(
            !top.contains("generate"),
            "the hidden subcommand shows:\n{top}"
        );
        let helper = page("mount.xnatfs.8");
        assert!(helper.contains("\n.TH mount.xnatfs 8 "), "{helper}");
        assert!(helper.contains("Fake"), "{helper}");
        assert!(!helper.contains(short_foreground), "{helper}");
    }

    #[test]
    fn completions_offer_the_visible_subcommands_and_their_flags() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut script = Vec::new();
            completions(shell, &mut script).unwrap();
            let script = String::from_utf8(script).unwrap();
            for word in ["mount", "status", "cache-dir", "spool-dir"] {
                assert!(script.contains(word), "{shell}: no {word}");
            }
            assert!(
                !script.contains("generate"),
                "{shell} offers the hidden subcommand"
            );
        }
    }

    #[test]
    fn plain_text_cannot_turn_into_roff_requests() {
        assert_eq!(roff_text("a-b \\n"), "a\\-b \\en");
        assert_eq!(roff_text(".SH X"), "\\&.SH X");
        assert_eq!(roff_text("'br"), "\\&'br");
    }
}
