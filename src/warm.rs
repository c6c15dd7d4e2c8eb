//! `xnatfs warm PATH…`: fetch everything under the paths into the mount's cache (its shared
//! cache when it has one, else its own) before a job array starts, so that the jobs find their
//! inputs local and the server sees each file once.
//!
//! The paths are walked through the mount (the daemon lists them in its bulk forms), folder by
//! folder. For a folder with two or more files the mount does not hold whole yet (their
//! `user.xnatfs.cached` attribute), the mount is asked to fetch its resource as one zip
//! (`user.xnatfs.warm`, see `fs::ops::warm`); each file still missing after that is read to
//! the end by one of `--jobs` workers, which fetches it whole into the cache. A second run so
//! fetches only what is missing. Progress goes to standard error: a bar redrawn in place
//! on a terminal (files, bytes, rate, time left), plain lines every 10 s otherwise. The exit
//! status is 0 when every file is cached, 1 with the paths that failed, 2 when a path is not on
//! an xnatfs mount.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cli::WarmArgs;
use crate::fs::ops::warm::WARM_XATTR;
use crate::fs::views;
use crate::status::{bytes, STATUS_XATTR};
use crate::xattr;

/// The attribute of a file that says whether the mount holds it whole ("1") or not ("0").
pub const CACHED_XATTR: &str = "user.xnatfs.cached";

/// A folder and the files to warm in it.
type Folder = (PathBuf, Vec<(PathBuf, u64)>);

#[derive(Default)]
struct Progress {
    files_total: AtomicU64,
    bytes_total: AtomicU64,
    files_done: AtomicU64,
    bytes_done: AtomicU64,
    /// Of the done: files found cached already, and their bytes.
    files_cached: AtomicU64,
    bytes_cached: AtomicU64,
    failed: Mutex<Vec<(PathBuf, String)>>,
}

impl Progress {
    /// One more file done, of `size` listed bytes.
    fn done(&self, size: u64) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        self.bytes_done.fetch_add(size, Ordering::Relaxed);
    }
}

pub fn run(args: &WarmArgs) -> ExitCode {
    let mut files = Vec::new();
    for path in &args.paths {
        if let Err(message) = on_a_mount(path) {
            eprintln!("xnatfs warm: {message}");
            return ExitCode::from(2);
        }
        if let Err(e) = walk(path, &mut files, true) {
            eprintln!("xnatfs warm: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    let progress = Arc::new(Progress::default());
    progress
        .files_total
        .store(files.len() as u64, Ordering::Relaxed);
    progress
        .bytes_total
        .store(files.iter().map(|f| f.1).sum(), Ordering::Relaxed);
    // Grouped by folder: a resource's folder may be fetched as one zip.
    let mut folders: BTreeMap<PathBuf, Vec<(PathBuf, u64)>> = BTreeMap::new();
    for (path, size) in files {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        folders.entry(dir).or_default().push((path, size));
    }
    let queue = Arc::new(Mutex::new(folders.into_iter().collect::<VecDeque<_>>()));
    let started = Instant::now();
    let finished = Arc::new(AtomicBool::new(false));
    let printer = {
        let (progress, finished) = (progress.clone(), finished.clone());
        let tty = std::io::stderr().is_terminal() && !args.plain;
        std::thread::spawn(move || show_progress(&progress, &finished, started, tty))
    };
    let workers: Vec<_> = (0..args.jobs.max(1) as usize)
        .map(|_| {
            let (queue, progress) = (queue.clone(), progress.clone());
            std::thread::spawn(move || work(&queue, &progress))
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    finished.store(true, Ordering::Release);
    let _ = printer.join();
    let p = &progress;
    let secs = started.elapsed().as_secs_f64();
    let fetched = p.bytes_done.load(Ordering::Relaxed) - p.bytes_cached.load(Ordering::Relaxed);
    let failed = p.failed.lock().unwrap();
    eprintln!(
        "xnatfs warm: {} file(s), {}: {} fetched in {:.1} s ({}/s), {} file(s) were cached already, {} failed",
        p.files_total.load(Ordering::Relaxed),
        bytes(p.bytes_total.load(Ordering::Relaxed)),
        bytes(fetched),
        secs,
        bytes((fetched as f64 / secs.max(0.001)) as u64),
        p.files_cached.load(Ordering::Relaxed),
        failed.len()
    );
    if failed.is_empty() {
        return ExitCode::SUCCESS;
    }
    for (path, error) in failed.iter() {
        eprintln!("failed: {}: {error}", path.display());
    }
    ExitCode::from(1)
}

/// Whether `path` is on an xnatfs mount: some folder above it (or it) answers the status
/// attribute only a mount's root has.
fn on_a_mount(path: &Path) -> Result<(), String> {
    let absolute = fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if absolute
        .ancestors()
        .any(|dir| xattr::get(dir, STATUS_XATTR).is_ok())
    {
        Ok(())
    } else {
        Err(format!("{} is not on an xnatfs mount", path.display()))
    }
}

/// Collects the files under `path` with their sizes; links are not followed, and below the
/// paths given, a project's views (`.bids`, `.tables`: the same files again, or tables made
/// from listings) are left out.
fn walk(path: &Path, files: &mut Vec<(PathBuf, u64)>, top: bool) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_file() {
        files.push((path.to_path_buf(), meta.len()));
        return Ok(());
    }
    if !meta.is_dir() {
        return Ok(());
    }
    let view = path
        .file_name()
        .is_some_and(|n| n == views::BIDS_DIR || n == views::TABLES_DIR);
    if view && !top {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        walk(&entry, files, false)?;
    }
    Ok(())
}

fn work(queue: &Mutex<VecDeque<Folder>>, p: &Progress) {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let Some((dir, files)) = queue.lock().unwrap().pop_front() else {
            return;
        };
        let cached = |path: &Path| xattr::get(path, CACHED_XATTR).is_ok_and(|v| v == b"1");
        let mut missing = Vec::new();
        for (path, size) in files {
            if cached(&path) {
                p.files_cached.fetch_add(1, Ordering::Relaxed);
                p.bytes_cached.fetch_add(size, Ordering::Relaxed);
                p.done(size);
            } else {
                missing.push((path, size));
            }
        }
        if missing.len() >= 2 {
            // The mount fetches the resource in one zip if that is worth it (a folder that is
            // not a resource's refuses; what the zip did not bring is read below).
            let _ = xattr::set(&dir, WARM_XATTR, b"zip");
            missing.retain(|(path, size)| {
                let now = cached(path);
                if now {
                    p.done(*size);
                }
                !now
            });
        }
        for (path, size) in missing {
            let mut read = 0u64;
            let outcome = fs::File::open(&path).and_then(|mut f| loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                read += n as u64;
                p.bytes_done.fetch_add(n as u64, Ordering::Relaxed);
            });
            // The listed size is what the total counted: what was counted on the way goes.
            p.bytes_done.fetch_sub(read, Ordering::Relaxed);
            p.done(size);
            if let Err(e) = outcome {
                p.failed.lock().unwrap().push((path, e.to_string()));
            }
        }
    }
}

fn show_progress(p: &Progress, finished: &AtomicBool, started: Instant, tty: bool) {
    let every = if tty {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(10)
    };
    let mut last = Instant::now();
    loop {
        let done = finished.load(Ordering::Acquire);
        if done || last.elapsed() >= every {
            last = Instant::now();
            let line = progress_line(p, started.elapsed());
            let mut err = std::io::stderr().lock();
            if tty {
                let _ = write!(err, "\r\x1b[K{line}");
                if done {
                    let _ = writeln!(err);
                }
            } else {
                let _ = writeln!(err, "{line}");
            }
        }
        if done {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn progress_line(p: &Progress, elapsed: Duration) -> String {
    let total = p.bytes_total.load(Ordering::Relaxed);
    let done = p.bytes_done.load(Ordering::Relaxed);
    let fetched = done.saturating_sub(p.bytes_cached.load(Ordering::Relaxed));
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = fetched as f64 / secs;
    let eta = if rate > 0.0 {
        format!("{:.0} s left", total.saturating_sub(done) as f64 / rate)
    } else {
        "time left unknown".into()
    };
    let width = 30usize;
    let filled = (width as u64 * done)
        .checked_div(total)
        .unwrap_or(width as u64) as usize;
    format!(
        "[{}{}] {}/{} files, {} of {}, {}/s, {}",
        "#".repeat(filled.min(width)),
        " ".repeat(width - filled.min(width)),
        p.files_done.load(Ordering::Relaxed),
        p.files_total.load(Ordering::Relaxed),
        bytes(done),
        bytes(total),
        bytes(rate as u64),
        eta
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_says_files_bytes_rate_and_time_left() {
        let p = Progress::default();
        p.files_total.store(10, Ordering::Relaxed);
        p.bytes_total.store(100 << 20, Ordering::Relaxed);
        p.files_done.store(5, Ordering::Relaxed);
        p.bytes_done.store(50 << 20, Ordering::Relaxed);
        let line = progress_line(&p, Duration::from_secs(5));
        assert!(line.contains("5/10 files"), "{line}");
        assert!(line.contains("50.0 MiB of 100.0 MiB"), "{line}");
        assert!(line.contains("10.0 MiB/s"), "{line}");
        assert!(line.contains("5 s left"), "{line}");
    }

    #[test]
    fn a_path_off_any_mount_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(on_a_mount(dir.path()).is_err());
    }
}
