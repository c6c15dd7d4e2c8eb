//! An in-memory XNAT behind [`Backend`](super::Backend), for the filesystem core's tests: a
//! small archive built in code, a log of every call, and switches for what real servers do
//! (ignore or honour Range, latency, bodies that trickle or break, a byte flipped, a stale
//! catalog size, a missing `Content-Length`) and for failures of any call.
//!
//! It answers only as the real client can: the same [`XnatError`] variants for the same
//! situations (404 for what is not there, `Duplicate` for an upload onto an existing file
//! without `replace`, 416 only for a range past the end when ranges are honoured). The
//! conformance suite (`xnat/conformance.rs`) runs against both to keep it so.

mod archive;
mod objects;
mod serve;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use self::archive::{md5_hex, Archive, Content, File};
use super::address::Owner;
use super::error::XnatError;
use super::model::CatalogFile;

/// The kinds of call, for the call log and for injected failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    Projects,
    Subjects,
    Experiments,
    Scans,
    Resources,
    Files,
    ScanFiles,
    Assessors,
    Fetch,
    Upload,
    Create,
    Delete,
}

/// A fetch the fake answered: the URI, the range asked, and whether a partial (206) body was
/// sent for it.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub uri: String,
    pub range: Option<std::ops::Range<u64>>,
    pub partial: bool,
}

/// How downloads are served.
struct Serving {
    latency: Duration,
    chunk_delay: Duration,
    chunk_size: u64,
    /// Bodies of these URIs trickle (1 s between chunks).
    slow: HashSet<String>,
    /// Break bodies after this many bytes, this many times.
    breaks: Option<(u64, usize)>,
    /// Serve these URIs with the middle byte flipped.
    corrupt: HashSet<String>,
    /// Wait this long inside every upload, after the bytes were taken.
    upload_delay: Duration,
}

pub struct FakeXnat {
    archive: Mutex<Archive>,
    serving: Mutex<Serving>,
    /// Honour `Range` (206) or send whole bodies (200), as real XNAT does.
    pub honour_range: AtomicBool,
    /// Send the size with a whole body (`Content-Length`).
    pub report_total: AtomicBool,
    /// Failures to answer instead of the next calls of a kind.
    failures: Mutex<HashMap<Call, VecDeque<XnatError>>>,
    /// Uploads to store whose answer is then lost (the connection drops).
    lost_answers: AtomicUsize,
    /// Uploads to store with a byte flipped (a proxy or disk that damages them).
    damaged_uploads: AtomicUsize,
    log: Mutex<Vec<(Call, String)>>,
    fetched: Mutex<Vec<Fetched>>,
    /// Body bytes sent.
    pub served: Arc<AtomicU64>,
    in_flight: Arc<AtomicUsize>,
    /// The most downloads in flight at once.
    pub max_in_flight: Arc<AtomicUsize>,
}

impl Default for FakeXnat {
    fn default() -> Self {
        FakeXnat {
            archive: Mutex::new(Archive::default()),
            serving: Mutex::new(Serving {
                latency: Duration::ZERO,
                chunk_delay: Duration::ZERO,
                chunk_size: 16 << 10,
                slow: HashSet::new(),
                breaks: None,
                corrupt: HashSet::new(),
                upload_delay: Duration::ZERO,
            }),
            honour_range: AtomicBool::new(false),
            report_total: AtomicBool::new(true),
            failures: Mutex::new(HashMap::new()),
            lost_answers: AtomicUsize::new(0),
            damaged_uploads: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            fetched: Mutex::new(Vec::new()),
            served: Arc::new(AtomicU64::new(0)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl FakeXnat {
    pub fn new() -> Arc<FakeXnat> {
        Arc::new(FakeXnat::default())
    }

    /// A fake that honours Range (or not).
    pub fn with_ranges(honour: bool) -> Arc<FakeXnat> {
        let fake = FakeXnat::default();
        fake.honour_range.store(honour, Ordering::SeqCst);
        Arc::new(fake)
    }

    fn archive(&self) -> std::sync::MutexGuard<'_, Archive> {
        self.archive.lock().unwrap()
    }

    // Building the archive.

    pub fn add_project(&self, id: &str) {
        self.archive()
            .projects
            .insert(id.to_string(), format!("Project {id}"));
    }

    /// A subject of `project` with `label`; returns its accession ID.
    pub fn add_subject(&self, project: &str, label: &str) -> String {
        let mut a = self.archive();
        let id = format!("XNAT_S{:05}", a.next_id());
        a.subjects.push(archive::Subject {
            id: id.clone(),
            label: label.to_string(),
            project: project.to_string(),
        });
        id
    }

    /// An MR session of the subject with label `subject`; returns its accession ID.
    pub fn add_session(&self, project: &str, subject: &str, label: &str) -> String {
        let mut a = self.archive();
        let subject = a
            .subject(project, subject)
            .map(|s| s.id.clone())
            .expect("add the subject first");
        let id = format!("XNAT_E{:05}", a.next_id());
        a.experiments.push(archive::Experiment {
            id: id.clone(),
            label: label.to_string(),
            project: project.to_string(),
            subject,
            xsi_type: "xnat:mrSessionData".into(),
            date: "2024-01-02".into(),
        });
        id
    }

    pub fn add_scan(&self, experiment: &str, id: &str, scan_type: &str) {
        self.archive().scans.push(archive::Scan {
            experiment: experiment.to_string(),
            id: id.to_string(),
            scan_type: scan_type.to_string(),
            series_description: scan_type.to_string(),
        });
    }

    /// A QC assessor of `experiment`; returns its accession ID.
    pub fn add_assessor(&self, experiment: &str, label: &str) -> String {
        let mut a = self.archive();
        let id = format!("XNAT_E{:05}", a.next_id());
        a.assessors.push(archive::Assessor {
            experiment: experiment.to_string(),
            id: id.clone(),
            label: label.to_string(),
            xsi_type: "xnat:qcAssessmentData".into(),
        });
        id
    }

    /// A resource `label` of `owner` (which must exist); returns its numeric ID.
    pub fn add_resource(&self, owner: &Owner, label: &str) -> String {
        let mut a = self.archive();
        let owner = a.owner("PUT", owner).expect("add the owner first");
        let at = a.add_resource(owner, label);
        a.resources[at].id.to_string()
    }

    fn put_file(
        &self,
        owner: &Owner,
        resource: &str,
        path: &str,
        content: Content,
        digest: Option<String>,
    ) -> CatalogFile {
        let mut a = self.archive();
        let at = match a.resource("PUT", owner, resource) {
            Ok(at) => at,
            Err(_) => {
                let owner = a.owner("PUT", owner).expect("add the owner first");
                a.add_resource(owner, resource)
            }
        };
        let file = File {
            content,
            digest,
            listed_size: None,
            format: String::new(),
        };
        let row = a.resources[at].row(path, &file);
        a.resources[at].put(path, file);
        row
    }

    /// A file at `path` of resource `resource` of `owner` (made if missing), listed with its
    /// MD5 digest; returns its listing row.
    pub fn add_file(
        &self,
        owner: &Owner,
        resource: &str,
        path: &str,
        data: Vec<u8>,
    ) -> CatalogFile {
        let digest = Some(md5_hex(&data));
        self.put_file(
            owner,
            resource,
            path,
            Content::Bytes(Bytes::from(data)),
            digest,
        )
    }

    /// One more catalog entry for `path`, beside the one there (a damaged catalog).
    pub fn add_duplicate_entry(&self, owner: &Owner, resource: &str, path: &str, data: Vec<u8>) {
        let mut a = self.archive();
        let at = a
            .resource("PUT", owner, resource)
            .expect("add the resource first");
        a.resources[at].files.push((
            path.to_string(),
            File {
                digest: Some(md5_hex(&data)),
                content: Content::Bytes(Bytes::from(data)),
                listed_size: None,
                format: String::new(),
            },
        ));
    }

    /// A `size`-byte file repeating `pattern`, listed without a digest.
    pub fn add_pattern(
        &self,
        owner: &Owner,
        resource: &str,
        path: &str,
        pattern: Vec<u8>,
        size: u64,
    ) -> CatalogFile {
        let content = Content::Pattern {
            pattern: Bytes::from(pattern),
            size,
        };
        self.put_file(owner, resource, path, content, None)
    }

    /// Make the catalog list the file at `uri` with `size` bytes (a stale catalog).
    pub fn set_listed_size(&self, uri: &str, size: u64) {
        let mut a = self.archive();
        for r in &mut a.resources {
            let id = r.id;
            let owner = r.owner.clone();
            for (path, file) in &mut r.files {
                let here = crate::xnat::paths::resource(&owner, &id.to_string()).file(path);
                if here.raw() == uri {
                    file.listed_size = Some(size);
                }
            }
        }
    }

    /// The bytes the server holds at `path` of `resource` of `owner`.
    pub fn file_bytes(&self, owner: &Owner, resource: &str, path: &str) -> Option<Vec<u8>> {
        let a = self.archive();
        let at = a.resource("GET", owner, resource).ok()?;
        let file = a.resources[at].file(path)?;
        Some(file.content.chunk(0, file.content.len()).to_vec())
    }

    /// Subject labels of `project`.
    pub fn subject_labels(&self, project: &str) -> Vec<String> {
        let a = self.archive();
        a.subjects
            .iter()
            .filter(|s| s.project == project)
            .map(|s| s.label.clone())
            .collect()
    }

    // Switches.

    pub fn set_latency(&self, d: Duration) {
        self.serving.lock().unwrap().latency = d;
    }

    pub fn set_chunk_delay(&self, d: Duration) {
        self.serving.lock().unwrap().chunk_delay = d;
    }

    pub fn set_chunk_size(&self, n: u64) {
        self.serving.lock().unwrap().chunk_size = n;
    }

    pub fn set_upload_delay(&self, d: Duration) {
        self.serving.lock().unwrap().upload_delay = d;
    }

    /// Bodies of `uri` trickle (1 s between chunks).
    pub fn make_slow(&self, uri: &str) {
        self.serving.lock().unwrap().slow.insert(uri.to_string());
    }

    /// The next `times` bodies break after `after` bytes.
    pub fn break_bodies(&self, after: u64, times: usize) {
        self.serving.lock().unwrap().breaks = Some((after, times));
    }

    /// Serve `uri` with its middle byte flipped.
    pub fn corrupt(&self, uri: &str) {
        self.serving.lock().unwrap().corrupt.insert(uri.to_string());
    }

    /// Answer the next `times` calls of `call` with `error`.
    pub fn fail(&self, call: Call, error: XnatError, times: usize) {
        let mut failures = self.failures.lock().unwrap();
        let queue = failures.entry(call).or_default();
        queue.extend(std::iter::repeat_n(error, times));
    }

    /// Store the next `times` uploads, then lose their answers (the connection drops).
    pub fn lose_upload_answers(&self, times: usize) {
        self.lost_answers.store(times, Ordering::SeqCst);
    }

    /// Store the next `times` non-empty uploads with their first byte flipped: the answer is
    /// a success, but the catalog then lists another digest.
    pub fn damage_uploads(&self, times: usize) {
        self.damaged_uploads.store(times, Ordering::SeqCst);
    }

    // The log.

    /// Every call so far, with what it named.
    pub fn calls(&self) -> Vec<(Call, String)> {
        self.log.lock().unwrap().clone()
    }

    /// How many calls of `call` were made.
    pub fn count(&self, call: Call) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| *c == call)
            .count()
    }

    /// Every fetch so far.
    pub fn fetches(&self) -> Vec<Fetched> {
        self.fetched.lock().unwrap().clone()
    }

    /// How many calls of any kind were made.
    pub fn total_calls(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Log a call; the injected failure to answer instead, if any.
    fn called(&self, call: Call, what: String) -> Result<(), XnatError> {
        self.log.lock().unwrap().push((call, what));
        match self
            .failures
            .lock()
            .unwrap()
            .get_mut(&call)
            .and_then(VecDeque::pop_front)
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Errors as the real client builds them, for tests that inject failures.
pub mod errors {
    use crate::xnat::error::XnatError;

    pub fn status(method: &str, status: u16) -> XnatError {
        XnatError::from_status(method, "http://fake.invalid/data/x", status, String::new())
    }

    pub fn network(method: &str) -> XnatError {
        XnatError::Network {
            method: method.into(),
            url: "http://fake.invalid/data/x".into(),
            attempts: 1,
            detail: "connection reset".into(),
        }
    }

    pub fn exhausted(method: &str) -> XnatError {
        XnatError::RetriesExhausted {
            method: method.into(),
            url: "http://fake.invalid/data/x".into(),
            attempts: 6,
            status: 503,
            message: String::new(),
        }
    }
}
