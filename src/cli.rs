//! The command line: `xnatfs mount …`, `mount.xnatfs …` (the mount(8) helper form) and friends,
//! and the hidden `xnatfs generate …` that writes the man pages and shell completions an install
//! puts in place.
//!
//! This module only parses and normalises flags into [`MountOptions`]; what a mount does lives in
//! the library. `-o opt[,opt…]` accepts the same settings as the long flags, so an fstab line can
//! say everything a command line can, and mount(8)'s generic options (`defaults`, `noauto`,
//! `_netdev`, …) are accepted and ignored.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Mount an XNAT archive as a directory tree.
#[derive(Debug, Parser)]
#[command(name = "xnatfs", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mount an XNAT server (the same as `mount.xnatfs`).
    Mount(Box<MountArgs>),
    /// Issue an XNAT alias token from your password, for `mount --token-file`.
    Token(TokenArgs),
    /// What a mount is doing: online or offline, uploads with their progress, downloads, the
    /// cache, requests. Exits 0 when no upload is waiting, 1 when some are, 2 on an error.
    Status(StatusArgs),
    /// Fetch everything under the paths (on a mount) into its cache before jobs read them:
    /// the shared cache when the mount has one. Only what is missing is fetched; exits 1 with
    /// the paths that failed.
    Warm(WarmArgs),
    /// Write the man pages or a shell's completions (for `scripts/install.sh` and packagers).
    #[command(hide = true, subcommand)]
    Generate(Generate),
}

/// `xnatfs generate …`: what [`crate::generate`] writes.
#[derive(Debug, Clone, Subcommand)]
pub enum Generate {
    /// Write xnatfs.1, a page per subcommand (xnatfs-mount.1, …) and mount.xnatfs.8 into DIR.
    Man {
        /// The folder to write the pages into (made if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the completion script of SHELL on standard output.
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

/// `xnatfs warm PATH…`
#[derive(Debug, Clone, Args)]
pub struct WarmArgs {
    /// Files or folders under an xnatfs mount (a project, a subject, a session…).
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Files read at once.
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
    /// Plain progress lines (every 10 s) even on a terminal.
    #[arg(long)]
    pub plain: bool,
}

/// `xnatfs token [SERVER_URL] [--output FILE]`
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The XNAT server (else XNAT_HOST, or the --config file).
    #[arg(value_name = "SERVER_URL")]
    pub server: Option<String>,
    /// XNAT user name (else XNAT_USER, ~/.netrc, the --config file, or a prompt).
    #[arg(long)]
    pub user: Option<String>,
    /// A pyxnat-style JSON config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A PEM file with the private CA that signed the server's certificate.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Write the token here (made 0600, replaced whole) instead of standard output.
    #[arg(long, short = 'O', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `xnatfs status MOUNTPOINT`
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// An xnatfs mount point.
    #[arg(value_name = "MOUNTPOINT", required_unless_present = "spool_dir")]
    pub mountpoint: Option<PathBuf>,
    /// Read this spool folder instead of asking a mount (for a mount that has ended).
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Print the mount's report as JSON, for scripts.
    #[arg(long, conflicts_with = "spool_dir")]
    pub json: bool,
}

/// `mount.xnatfs [SERVER_URL] MOUNTPOINT [-o opt[,opt…]]`
#[derive(Debug, Clone, Args)]
#[command(after_help = MOUNT_HELP)]
pub struct MountArgs {
    /// The XNAT server, e.g. https://xnat.example.org (else XNAT_HOST, or the --config file).
    #[arg(value_name = "SERVER_URL")]
    pub first: PathBuf,
    /// Where to mount.
    #[arg(value_name = "MOUNTPOINT")]
    pub second: Option<PathBuf>,
    /// Mount options, comma separated (see below).
    #[arg(short = 'o', value_name = "OPTIONS", action = clap::ArgAction::Append)]
    pub options: Vec<String>,
    /// XNAT user name (else XNAT_USER, ~/.netrc, the --config file, or a prompt).
    #[arg(long)]
    pub user: Option<String>,
    /// A pyxnat-style JSON config file: {"server": …, "user": …, "password": …}.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log in with the XNAT alias token in FILE (from `xnatfs token`; read again at each
    /// login, so a fresh token put there is used) instead of a password (also `-o token_file=`).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Show only this project at the top of the tree.
    #[arg(long)]
    pub project: Option<String>,
    /// Refuse every change with EROFS (also `-o ro`).
    #[arg(long, alias = "ro")]
    pub read_only: bool,
    /// Let other users see the mount (also `-o allow_other`; needs user_allow_other for non-root).
    #[arg(long)]
    pub allow_other: bool,
    /// Mount over a folder that is not empty, hiding what is in it (also `-o nonempty`).
    #[arg(long)]
    pub allow_non_empty: bool,
    /// A PEM file with the private CA that signed the server's certificate.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Where the disk block cache lives (default ~/.cache/xnatfs).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Largest size of the disk cache, e.g. 10G, 500M (default 10G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub cache_size: Option<u64>,
    /// How long listings are trusted, in seconds (default 60).
    #[arg(long, value_name = "SECS")]
    pub metadata_ttl: Option<u64>,
    /// error, warn, info, debug or trace, or tracing directives such as
    /// `xnatfs=debug,hyper=info` (default: `RUST_LOG` if set, else info).
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Write the log here (default: standard error in the foreground, nowhere in the background).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Stay in the foreground instead of going to the background once mounted.
    #[arg(short = 'f', long)]
    pub foreground: bool,
    /// Let `rm`, `rmdir` and `mv` delete data on the server (also `-o allow_delete`).
    #[arg(long)]
    pub allow_delete: bool,
    /// Never ask the server: serve the listings and files an earlier mount kept, stage files
    /// written until a mount that is online (also `-o offline`).
    #[arg(long)]
    pub offline: bool,
    /// The xsiType `mkdir` gives a new experiment (default xnat:mrSessionData).
    #[arg(long, value_name = "TYPE")]
    pub session_type: Option<String>,
    /// Where files written are staged until the server has them
    /// (default ~/.local/share/xnatfs/spool).
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Longest wait between background retries of a failed upload, in seconds (default 60).
    #[arg(long, value_name = "SECS")]
    pub upload_retry_max: Option<u64>,
    /// The longest a listing may take, retries included, in seconds (default 300).
    #[arg(long, value_name = "SECS")]
    pub listing_timeout: Option<u64>,
    /// The longest one read waits for its bytes, resumes included, in seconds (default 300).
    #[arg(long, value_name = "SECS")]
    pub read_timeout: Option<u64>,
    /// The longest one upload attempt may take, in seconds, plus one second per MiB of the
    /// file (default 300).
    #[arg(long, value_name = "SECS")]
    pub upload_timeout: Option<u64>,
    /// The largest listing read, e.g. 256M (default 256M).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_listing_size: Option<u64>,
    /// A JSON file mapping scan types or series descriptions to BIDS names, for every
    /// project's `.bids` view (also `-o bids_map=FILE`; see docs/SEMANTICS.md).
    #[arg(long, value_name = "FILE")]
    pub bids_map: Option<PathBuf>,
    /// A cache folder many mounts share (on a cluster: a folder of the shared filesystem):
    /// whole files, each fetched from the server once across them (also `-o shared_cache=`;
    /// see docs/CLUSTER.md).
    #[arg(long, value_name = "DIR")]
    pub shared_cache: Option<PathBuf>,
    /// Largest size of the shared cache, e.g. 500G (default 100G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub shared_cache_size: Option<u64>,
    /// Requests this mount has in flight against the server at most (default 16).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_connections: Option<u32>,
    /// Requests all the mounts of the --shared-cache folder have in flight against this
    /// server at most, counted through lease files in that folder (default: no such bound).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub cluster_connections: Option<u32>,
    /// When the MD5 digest XNAT lists for a file is checked against the bytes downloaded:
    /// `background` (beside the read, never slowing it; a mismatch fails later reads and drops
    /// the cached blocks), `strict` (the last block of a file waits for the check, so a
    /// reader that reads to the end gets EIO on a mismatch; reads go no faster than MD5), or
    /// `off` (default background).
    #[arg(long, value_name = "WHEN", value_enum)]
    pub md5_check: Option<crate::fs::read::DigestCheck>,
    /// mount(8)'s `-s` to its helper: ignore `-o` options not known here.
    #[arg(long, hide = true)]
    pub sloppy: bool,
}

const MOUNT_HELP: &str = "\
Mount options (-o): ro, rw, allow_other, nonempty, allow_delete, offline, project=P, username=U, config=FILE,
token_file=FILE,
ca_cert=FILE, cache_dir=DIR, cache_size=SIZE, metadata_ttl=SECS, session_type=TYPE,
spool_dir=DIR, upload_retry_max=SECS, bids_map=FILE, listing_timeout=SECS,
read_timeout=SECS, upload_timeout=SECS, max_listing_size=SIZE, log_level=LEVEL, log_file=FILE,
shared_cache=DIR, shared_cache_size=SIZE, max_connections=N, cluster_connections=N, md5_check=WHEN,
foreground.
mount(8)'s generic options (defaults, auto, noauto, user, users, _netdev, nofail, exec, noexec,
suid, nosuid, dev, nodev, atime, noatime, relatime, x-*, comment=) are accepted and ignored.

Credentials come from --user/username=, XNAT_USER/XNAT_PASS, ~/.netrc, --config, or a prompt;
never from the command line. The server comes from SERVER_URL, XNAT_HOST or --config.

fstab:
  https://xnat.example.org  /home/alice/xnat  xnatfs  noauto,user,username=alice,project=MYPROJ  0 0";

/// Everything a mount needs, after flags and `-o` options are merged.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    pub server: Option<String>,
    pub mountpoint: PathBuf,
    pub user: Option<String>,
    pub config: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub project: Option<String>,
    pub read_only: bool,
    pub allow_other: bool,
    pub allow_non_empty: bool,
    pub ca_cert: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub cache_size: u64,
    pub metadata_ttl: Duration,
    pub log_level: String,
    pub log_file: Option<PathBuf>,
    pub foreground: bool,
    pub allow_delete: bool,
    pub offline: bool,
    pub session_type: String,
    pub spool_dir: Option<PathBuf>,
    pub upload_retry_max: Duration,
    pub bids_map: Option<PathBuf>,
    pub listing_timeout: Duration,
    pub read_timeout: Duration,
    pub upload_timeout: Duration,
    pub max_listing_size: u64,
    pub shared_cache: Option<PathBuf>,
    pub shared_cache_size: u64,
    pub max_connections: usize,
    pub cluster_connections: Option<usize>,
    /// When a download's MD5 digest is checked (`--md5-check`).
    pub md5_check: crate::fs::read::DigestCheck,
}

/// Default xsiType of an experiment made with `mkdir`.
pub const DEFAULT_SESSION_TYPE: &str = "xnat:mrSessionData";
/// Default longest wait between two background retries of an upload.
pub const DEFAULT_UPLOAD_RETRY_MAX: Duration = Duration::from_secs(60);

/// Default longest wait of one read for its bytes.
pub const DEFAULT_READ_TIMEOUT: Duration = crate::fs::read::DEFAULT_READ_DEADLINE;
/// Default longest upload attempt (plus a second per MiB of the file).
pub const DEFAULT_UPLOAD_TIMEOUT: Duration = crate::fs::write::DEFAULT_UPLOAD_DEADLINE;

/// Default largest disk cache: 10 GiB.
pub const DEFAULT_CACHE_SIZE: u64 = 10 << 30;
/// Default listing lifetime.
pub const DEFAULT_METADATA_TTL: Duration = Duration::from_secs(60);

impl MountArgs {
    /// Merge positionals, flags and `-o` options into one set of mount options.
    pub fn resolve(&self) -> Result<MountOptions, String> {
        let (server, mountpoint) = match &self.second {
            Some(mp) => (Some(self.first.to_string_lossy().into_owned()), mp.clone()),
            None => (None, self.first.clone()),
        };
        let mut opts = MountOptions {
            server,
            mountpoint,
            user: self.user.clone(),
            config: self.config.clone(),
            token_file: self.token_file.clone(),
            project: self.project.clone(),
            read_only: self.read_only,
            allow_other: self.allow_other,
            allow_non_empty: self.allow_non_empty,
            ca_cert: self.ca_cert.clone(),
            cache_dir: self.cache_dir.clone(),
            cache_size: self.cache_size.unwrap_or(DEFAULT_CACHE_SIZE),
            metadata_ttl: self
                .metadata_ttl
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_METADATA_TTL),
            log_level: self
                .log_level
                .clone()
                .or_else(|| std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()))
                .unwrap_or_else(|| "info".into()),
            log_file: self.log_file.clone(),
            foreground: self.foreground,
            allow_delete: self.allow_delete,
            offline: self.offline,
            session_type: self
                .session_type
                .clone()
                .unwrap_or_else(|| DEFAULT_SESSION_TYPE.into()),
            spool_dir: self.spool_dir.clone(),
            upload_retry_max: self
                .upload_retry_max
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_UPLOAD_RETRY_MAX),
            bids_map: self.bids_map.clone(),
            listing_timeout: self
                .listing_timeout
                .map(Duration::from_secs)
                .unwrap_or(crate::xnat::DEFAULT_LISTING_DEADLINE),
            read_timeout: self
                .read_timeout
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_READ_TIMEOUT),
            upload_timeout: self
                .upload_timeout
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_UPLOAD_TIMEOUT),
            max_listing_size: self
                .max_listing_size
                .unwrap_or(crate::xnat::DEFAULT_LISTING_MAX_BYTES),
            shared_cache: self.shared_cache.clone(),
            shared_cache_size: self
                .shared_cache_size
                .unwrap_or(crate::fs::shared::DEFAULT_SHARED_CACHE_SIZE),
            max_connections: self
                .max_connections
                .map_or(crate::cluster::DEFAULT_MAX_CONNECTIONS, |n| n as usize),
            cluster_connections: self.cluster_connections.map(|n| n as usize),
            md5_check: self.md5_check.unwrap_or_default(),
        };
        for option in self.options.iter().flat_map(|o| o.split(',')) {
            match apply_option(&mut opts, option.trim()) {
                Err(e) if self.sloppy && e.starts_with(UNKNOWN_OPTION) => {}
                r => r?,
            }
        }
        if opts.cluster_connections.is_some() && opts.shared_cache.is_none() {
            return Err(
                "--cluster-connections counts requests through the --shared-cache folder: \
                 give one"
                    .into(),
            );
        }
        Ok(opts)
    }
}

const UNKNOWN_OPTION: &str = "unknown mount option";

fn apply_option(opts: &mut MountOptions, option: &str) -> Result<(), String> {
    let (key, value) = match option.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (option, None),
    };
    let need =
        |what: &str| value.ok_or_else(|| format!("mount option {key} needs a value ({what})"));
    // A number of seconds, at least `floor`.
    let seconds = |floor: u64| -> Result<Duration, String> {
        let secs = need("seconds")?;
        let n: u64 = secs
            .parse()
            .map_err(|_| format!("{key}={secs} is not a number of seconds"))?;
        Ok(Duration::from_secs(n.max(floor)))
    };
    match key {
        "" => {}
        "ro" => opts.read_only = true,
        "rw" => opts.read_only = false,
        "allow_other" => opts.allow_other = true,
        "nonempty" => opts.allow_non_empty = true,
        "foreground" => opts.foreground = true,
        "allow_delete" => opts.allow_delete = true,
        "offline" => opts.offline = true,
        "session_type" => opts.session_type = need("an xsiType")?.to_string(),
        "spool_dir" => opts.spool_dir = Some(need("a folder")?.into()),
        "bids_map" => opts.bids_map = Some(need("a file")?.into()),
        "listing_timeout" => opts.listing_timeout = seconds(1)?,
        "read_timeout" => opts.read_timeout = seconds(1)?,
        "upload_timeout" => opts.upload_timeout = seconds(1)?,
        "max_listing_size" => opts.max_listing_size = parse_size(need("a size such as 256M")?)?,
        "upload_retry_max" => opts.upload_retry_max = seconds(1)?,
        "project" => opts.project = Some(need("a project ID")?.to_string()),
        "username" => opts.user = Some(need("an XNAT user")?.to_string()),
        "config" => opts.config = Some(need("a file")?.into()),
        "token_file" => opts.token_file = Some(need("a file")?.into()),
        "ca_cert" => opts.ca_cert = Some(need("a file")?.into()),
        "cache_dir" => opts.cache_dir = Some(need("a folder")?.into()),
        "cache_size" => opts.cache_size = parse_size(need("a size such as 10G")?)?,
        "metadata_ttl" => opts.metadata_ttl = seconds(0)?,
        "shared_cache" => opts.shared_cache = Some(need("a folder")?.into()),
        "shared_cache_size" => {
            opts.shared_cache_size = parse_size(need("a size such as 500G")?)?;
        }
        "max_connections" => opts.max_connections = count(key, need("a number")?, 1024)?,
        "md5_check" => {
            let when = need("background, strict or off")?;
            opts.md5_check = clap::ValueEnum::from_str(when, false).map_err(|_| {
                format!("option md5_check={when}: choose background, strict or off")
            })?;
        }
        "cluster_connections" => {
            opts.cluster_connections = Some(count(key, need("a number")?, 10000)?);
        }
        "log_level" => opts.log_level = need("a level")?.to_string(),
        "log_file" => opts.log_file = Some(need("a file")?.into()),
        "password" | "pass" => {
            return Err(
                "a password is never taken from the command line or mount options: use ~/.netrc, \
                 XNAT_PASS, a --config file, or the prompt"
                    .into(),
            )
        }
        "defaults" | "auto" | "noauto" | "user" | "users" | "nouser" | "owner" | "group"
        | "_netdev" | "nofail" | "exec" | "noexec" | "suid" | "nosuid" | "dev" | "nodev"
        | "atime" | "noatime" | "relatime" | "norelatime" | "strictatime" | "diratime"
        | "nodiratime" | "sync" | "async" | "comment" => {}
        k if k.starts_with("x-") || k.starts_with("comment") => {}
        other => {
            return Err(format!(
                "{UNKNOWN_OPTION}: {other} (see xnatfs mount --help)"
            ))
        }
    }
    Ok(())
}

/// A count from 1 to `max`, for option `key`.
fn count(key: &str, text: &str, max: usize) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("{key}={text} is not a number from 1 to {max}")),
    }
}

/// `10G`, `500M`, `64K` or plain bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 10G, 500M or 4096"))?;
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{text:?} has an unknown unit (use K, M, G or T)")),
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(args: &[&str]) -> Result<MountOptions, String> {
        let cli = Cli::try_parse_from(["xnatfs", "mount"].iter().chain(args))
            .map_err(|e| e.to_string())?;
        match cli.command {
            Command::Mount(m) => m.resolve(),
            _ => Err("not a mount".into()),
        }
    }

    #[test]
    fn write_options() {
        let o = mount(&["/mnt/x"]).unwrap();
        assert!(!o.allow_delete);
        assert_eq!(o.session_type, DEFAULT_SESSION_TYPE);
        assert_eq!(o.upload_retry_max, DEFAULT_UPLOAD_RETRY_MAX);
        let o = mount(&[
            "/mnt/x",
            "-o",
            "allow_delete,session_type=xnat:petSessionData,spool_dir=/s,upload_retry_max=5",
        ])
        .unwrap();
        assert!(o.allow_delete);
        assert_eq!(o.session_type, "xnat:petSessionData");
        assert_eq!(o.spool_dir, Some(PathBuf::from("/s")));
        assert_eq!(o.upload_retry_max, Duration::from_secs(5));
        let o = mount(&["/mnt/x", "--allow-delete", "--spool-dir", "/t"]).unwrap();
        assert!(o.allow_delete);
        assert_eq!(o.spool_dir, Some(PathBuf::from("/t")));
    }

    #[test]
    fn offline_and_token_options() {
        let o = mount(&["/mnt/x"]).unwrap();
        assert!(!o.offline);
        assert_eq!(o.token_file, None);
        let o = mount(&["/mnt/x", "-o", "offline,token_file=/home/a/.xnat-token"]).unwrap();
        assert!(o.offline);
        assert_eq!(o.token_file, Some(PathBuf::from("/home/a/.xnat-token")));
        let o = mount(&["/mnt/x", "--offline", "--token-file", "t.json"]).unwrap();
        assert!(o.offline);
        assert_eq!(o.token_file, Some(PathBuf::from("t.json")));
        assert!(
            mount(&["/mnt/x", "-o", "token_file"]).is_err(),
            "a file is needed"
        );
    }

    #[test]
    fn server_and_mountpoint_or_mountpoint_alone() {
        let o = mount(&["https://x.org", "/mnt/x"]).unwrap();
        assert_eq!(o.server.as_deref(), Some("https://x.org"));
        assert_eq!(o.mountpoint, PathBuf::from("/mnt/x"));
        let o = mount(&["/mnt/x"]).unwrap();
        assert_eq!(o.server, None);
        assert_eq!(o.mountpoint, PathBuf::from("/mnt/x"));
    }

    #[test]
    fn dash_o_options_as_mount8_passes_them() {
        let o = mount(&[
            "https://x.org",
            "/mnt/x",
            "-o",
            "rw,noauto,_netdev,project=P1,username=alice,cache_size=2G,metadata_ttl=5,ro",
        ])
        .unwrap();
        assert!(o.read_only);
        assert_eq!(o.project.as_deref(), Some("P1"));
        assert_eq!(o.user.as_deref(), Some("alice"));
        assert_eq!(o.cache_size, 2 << 30);
        assert_eq!(o.metadata_ttl, Duration::from_secs(5));
    }

    #[test]
    fn passwords_and_unknown_options_are_refused() {
        let err = mount(&["/mnt/x", "-o", "password=hunter2"]).unwrap_err();
        assert!(err.contains("never taken"), "{err}");
        assert!(!err.contains("hunter2"));
        assert!(mount(&["/mnt/x", "-o", "frobnicate"])
            .unwrap_err()
            .contains("unknown mount option"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64K").unwrap(), 64 << 10);
        assert_eq!(parse_size("500MiB").unwrap(), 500 << 20);
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5Q").is_err());
    }
}
