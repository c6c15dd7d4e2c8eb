//! `xnatfs status MOUNTPOINT`: what a mount is doing (online or offline since when, uploads with
//! their progress, downloads, the cache, requests and failures), for people or, with `--json`,
//! for scripts.
//!
//! The mount answers with its report (`fs::ops::report`) in the extended attribute
//! `user.xnatfs.status` of its root. `--spool-dir` reads a spool folder's journal directly, for
//! a mount that has ended: for each staged file where it goes, whether it was still open for
//! writing, waiting for a retry, or refused, and the last error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use crate::cli::StatusArgs;
use crate::fs::ops::report::{ago, Report, Upload, REPORT_VERSION};
use crate::fs::write::spool::read_records;

/// The extended attribute of a mount's root that names its spool folder.
pub const SPOOL_XATTR: &str = "user.xnatfs.spool";
/// The extended attribute of a mount's root that holds its report (JSON).
pub const STATUS_XATTR: &str = "user.xnatfs.status";

pub fn run(args: &StatusArgs) -> ExitCode {
    match report(args) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(message) => {
            eprintln!("xnatfs status: {message}");
            ExitCode::from(2)
        }
    }
}

/// Print the report; returns how many files wait.
fn report(args: &StatusArgs) -> Result<usize, String> {
    let dirs: Vec<PathBuf> = match (&args.spool_dir, &args.mountpoint) {
        (Some(dir), _) => {
            // The folder given, or each per-server folder inside it.
            if dir.join("lock").exists() {
                vec![dir.clone()]
            } else {
                std::fs::read_dir(dir)
                    .map_err(|e| format!("{}: {e}", dir.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.join("lock").exists())
                    .collect()
            }
        }
        (None, Some(mountpoint)) => return mount_report(mountpoint, args.json),
        (None, None) => return Err("give a mount point or --spool-dir".into()),
    };
    let mut records = Vec::new();
    for dir in &dirs {
        records.extend(read_records(dir).map_err(|e| format!("{}: {e}", dir.display()))?);
    }
    if records.is_empty() {
        println!("no uploads waiting");
        return Ok(0);
    }
    let count = records.len();
    for record in records {
        print!("{}", upload_line(&Upload::from_record(record)));
    }
    Ok(count)
}

/// Print the report of the mount at `mountpoint`; returns how many files wait.
fn mount_report(mountpoint: &Path, json: bool) -> Result<usize, String> {
    let raw = root_xattr(mountpoint, STATUS_XATTR)?;
    let report: Report = serde_json::from_slice(&raw).map_err(|e| {
        format!(
            "{}: the mount's report is unreadable: {e}",
            mountpoint.display()
        )
    })?;
    if report.version != REPORT_VERSION {
        return Err(format!(
            "{}: the mount reports in format {}, this xnatfs reads {REPORT_VERSION}: use the \
             xnatfs that mounted it",
            mountpoint.display(),
            report.version
        ));
    }
    if json {
        println!("{}", String::from_utf8_lossy(&raw));
    } else {
        print!("{}", human(&report, mountpoint, SystemTime::now()));
    }
    Ok(report.uploads_total)
}

/// The report for people.
fn human(r: &Report, mountpoint: &Path, now: SystemTime) -> String {
    let mut out = format!("{} at {}\n", r.server, mountpoint.display());
    let server = match (r.offline_since, &r.offline_reason) {
        (Some(since), reason) => format!(
            "OFFLINE since {} ({}){}",
            httpdate::fmt_http_date(crate::fs::mtime::from_epoch_secs(since)),
            ago(since, now),
            reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        (None, _) => "online".to_string(),
    };
    out += &format!("server     {server}\n");
    out += &format!(
        "requests   {} sent, {} failed, {} outage(s) since the mount\n",
        r.requests, r.request_failures, r.outages
    );
    out += &format!(
        "downloads  {} running; {} request(s), {} received, {} resume(s)\n",
        r.downloads.in_flight,
        r.downloads.requests,
        bytes(r.downloads.bytes),
        r.downloads.resumes
    );
    let k = &r.connections;
    out += &format!(
        "requests   {} of {} allowed in flight, {} waiting{}\n",
        k.in_flight,
        k.max_connections,
        k.waiting,
        if k.cluster_slots > 0 {
            format!(
                "; cluster-wide {} slot(s), {} wait(s) for one so far",
                k.cluster_slots, k.slot_waits
            )
        } else {
            String::new()
        }
    );
    if let Some(shared) = &r.shared_cache {
        let s = &shared.figures;
        out += &format!(
            "shared     {} of {} in {}; {} hit(s), {} file(s) fetched into it, {} wait(s) for \
             another mount, {} lease(s) taken over, {} evicted, {} damaged\n",
            bytes(s.bytes),
            bytes(s.capacity),
            shared.dir,
            s.hits,
            s.fills,
            s.waits,
            s.takeovers,
            s.evicted,
            s.damaged
        );
    }
    let c = &r.cache;
    out += &format!(
        "cache      memory {} of {}, disk {} of {}; {:.1} % of blocks from the cache ({} hits, {} misses)\n",
        bytes(c.memory_bytes),
        bytes(c.memory_capacity),
        bytes(c.disk_bytes),
        bytes(c.disk_capacity),
        c.hit_ratio * 100.0,
        c.hits,
        c.misses
    );
    out += &format!(
        "listings   {} kept for offline use (budget {})\n",
        bytes(r.listings_kept_bytes),
        bytes(r.listings_kept_budget)
    );
    if r.uploads_total == 0 {
        out += "uploads    none waiting\n";
        return out;
    }
    out += &format!("uploads    {} file(s) staged\n", r.uploads_total);
    for u in &r.uploads {
        out += &upload_line(u);
    }
    if r.uploads.len() < r.uploads_total {
        out += &format!("  … and {} more\n", r.uploads_total - r.uploads.len());
    }
    out
}

/// One staged file: state, size, path under the mount, progress while it is sent, attempts,
/// and the last error on a line of its own.
fn upload_line(u: &Upload) -> String {
    let progress = if u.state == "uploading" {
        format!("  sent {} ({}/s)", bytes(u.sent), bytes(u.rate))
    } else {
        String::new()
    };
    let mut out = format!(
        "  {:<9} {:>10}  {}{progress}",
        u.state,
        bytes(u.size),
        u.path
    );
    if u.attempts > 0 {
        out += &format!("  ({} attempt(s))", u.attempts);
    }
    out += "\n";
    if let Some(e) = &u.last_error {
        out += &format!("            last error: {e}\n");
    }
    out
}

/// `1.5 GiB`, for people.
/// `1.5 GiB` style, for people.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The value of the extended attribute `attr` of the xnatfs mount at `mountpoint`.
fn root_xattr(mountpoint: &Path, attr: &str) -> Result<Vec<u8>, String> {
    crate::xattr::get(mountpoint, attr).map_err(|err| match err.raw_os_error() {
        Some(libc::ENODATA) | Some(libc::ENOTSUP) => format!(
            "{} is not an xnatfs mount (use --spool-dir for the spool of one that has ended)",
            mountpoint.display()
        ),
        _ => format!("{}: {err}", mountpoint.display()),
    })
}
