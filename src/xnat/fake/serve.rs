//! The fake's answers to each [`Backend`] call, as XNAT gives them (reference §2): listings
//! from the archive, bodies cut into chunks with the switches applied, uploads that refuse to
//! replace without `replace`, creates and deletes with XNAT's statuses.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use futures::FutureExt;

use super::archive::{md5_hex, not_found, Content, File};
use super::{Call, FakeXnat};
use crate::xnat::address::{FileAddr, NewObject, Owner, Removal};
use crate::xnat::backend::{Backend, Created};
use crate::xnat::error::{Result, XnatError};
use crate::xnat::model::{
    Assessor, CatalogFile, Experiment, Project, Resource, ScanFile, SessionScan, Subject,
};
use crate::xnat::paths;
use crate::xnat::transfer::{Download, Uploaded};

/// Keeps the in-flight count while a body is alive.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn ready<'a, T: Send + 'a>(value: Result<T>) -> BoxFuture<'a, Result<T>> {
    async move { value }.boxed()
}

impl FakeXnat {
    fn listing<T>(
        &self,
        call: Call,
        what: String,
        rows: impl FnOnce(&Self) -> Result<T>,
    ) -> Result<T> {
        self.called(call, what)?;
        rows(self)
    }

    fn stream(&self, uri: &str, range: Option<Range<u64>>) -> Result<(Content, bool, u64, u64)> {
        let a = self.archive();
        let (_, _, file) = a.find_uri(uri).ok_or_else(|| not_found("GET", uri))?;
        let content = file.content.clone();
        let size = content.len();
        let honour = self.honour_range.load(Ordering::SeqCst);
        match range {
            Some(r) if honour => {
                if r.start >= size {
                    return Err(XnatError::RangeNotSatisfiable {
                        method: "GET".into(),
                        url: format!("http://fake.invalid{uri}"),
                        size: Some(size),
                    });
                }
                Ok((content, true, r.start, r.end.min(size)))
            }
            _ => Ok((content, false, 0, size)),
        }
    }
}

impl Backend for FakeXnat {
    fn projects(&self) -> BoxFuture<'_, Result<Vec<Project>>> {
        ready(self.listing(Call::Projects, String::new(), |f| {
            Ok(f.archive()
                .projects
                .iter()
                .map(|(id, name)| Project {
                    id: id.clone(),
                    name: name.clone(),
                    uri: paths::project(id).raw().to_string(),
                    ..Project::default()
                })
                .collect())
        }))
    }

    fn subjects<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<Subject>>> {
        ready(self.listing(Call::Subjects, project.into(), |f| {
            let a = f.archive();
            a.project("GET", project)?;
            Ok(a.subjects
                .iter()
                .filter(|s| s.project == project)
                .map(|s| Subject {
                    id: s.id.clone(),
                    label: s.label.clone(),
                    project: s.project.clone(),
                    ..Subject::default()
                })
                .collect())
        }))
    }

    fn experiments<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<Experiment>>> {
        ready(self.listing(Call::Experiments, project.into(), |f| {
            let a = f.archive();
            a.project("GET", project)?;
            Ok(a.experiments
                .iter()
                .filter(|e| e.project == project)
                .map(|e| Experiment {
                    id: e.id.clone(),
                    label: e.label.clone(),
                    project: e.project.clone(),
                    subject_id: e.subject.clone(),
                    subject_label: a
                        .subject(project, &e.subject)
                        .map(|s| s.label.clone())
                        .unwrap_or_default(),
                    xsi_type: e.xsi_type.clone(),
                    date: e.date.clone(),
                    uri: paths::experiment(&e.id).raw().to_string(),
                    ..Experiment::default()
                })
                .collect())
        }))
    }

    fn scans<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<SessionScan>>> {
        ready(self.listing(Call::Scans, project.into(), |f| {
            let a = f.archive();
            a.project("GET", project)?;
            let mut out = Vec::new();
            for e in a.experiments.iter().filter(|e| e.project == project) {
                for s in a.scans.iter().filter(|s| s.experiment == e.id) {
                    let owner = Owner::Scan {
                        experiment: e.id.clone(),
                        scan: s.id.clone(),
                    };
                    out.push(SessionScan {
                        experiment_id: e.id.clone(),
                        id: s.id.clone(),
                        scan_type: s.scan_type.clone(),
                        series_description: s.series_description.clone(),
                        quality: "usable".into(),
                        xsi_type: String::new(),
                        resources: a
                            .resources
                            .iter()
                            .filter(|r| r.owner == owner)
                            .map(|r| r.label.clone())
                            .collect(),
                    });
                }
            }
            Ok(out)
        }))
    }

    fn resources<'a>(&'a self, owner: &'a Owner) -> BoxFuture<'a, Result<Vec<Resource>>> {
        ready(
            self.listing(Call::Resources, paths::owner(owner).raw().into(), |f| {
                let a = f.archive();
                let owner = a.owner("GET", owner)?;
                Ok(a.resources
                    .iter()
                    .filter(|r| r.owner == owner)
                    .map(|r| Resource {
                        id: r.id.to_string(),
                        label: r.label.clone(),
                        format: r.format.clone(),
                        file_count: Some(r.files.len() as u64),
                        file_size: Some(r.files.iter().map(|(_, f)| f.content.len()).sum()),
                        ..Resource::default()
                    })
                    .collect())
            }),
        )
    }

    fn files<'a>(
        &'a self,
        owner: &'a Owner,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<Vec<CatalogFile>>> {
        let what = paths::resource(owner, resource).raw().to_string();
        ready(self.listing(Call::Files, what, |f| {
            let a = f.archive();
            let r = &a.resources[a.resource("GET", owner, resource)?];
            Ok(r.files
                .iter()
                .map(|(path, file)| r.row(path, file))
                .collect())
        }))
    }

    fn scan_files<'a>(&'a self, experiment: &'a str) -> BoxFuture<'a, Result<Vec<ScanFile>>> {
        ready(self.listing(Call::ScanFiles, experiment.into(), |f| {
            let a = f.archive();
            if a.experiment(experiment).is_none() {
                return Err(not_found("GET", paths::experiment(experiment).raw()));
            }
            let mut out = Vec::new();
            for r in &a.resources {
                let Owner::Scan {
                    experiment: e,
                    scan,
                } = &r.owner
                else {
                    continue;
                };
                if e != experiment {
                    continue;
                }
                for (path, file) in &r.files {
                    out.push(ScanFile {
                        scan_id: scan.clone(),
                        resource_id: r.id.to_string(),
                        file: r.row(path, file),
                    });
                }
            }
            Ok(out)
        }))
    }

    fn assessors<'a>(&'a self, experiment: &'a str) -> BoxFuture<'a, Result<Vec<Assessor>>> {
        ready(self.listing(Call::Assessors, experiment.into(), |f| {
            let a = f.archive();
            if a.experiment(experiment).is_none() {
                return Err(not_found("GET", paths::experiment(experiment).raw()));
            }
            Ok(a.assessors
                .iter()
                .filter(|q| q.experiment == experiment)
                .map(|q| Assessor {
                    id: q.id.clone(),
                    label: q.label.clone(),
                    xsi_type: q.xsi_type.clone(),
                    ..Assessor::default()
                })
                .collect())
        }))
    }

    fn fetch(&self, uri: &str, range: Option<Range<u64>>) -> BoxFuture<'static, Result<Download>> {
        let what = match &range {
            Some(r) => format!("{uri} {}-{}", r.start, r.end),
            None => uri.to_string(),
        };
        if let Err(e) = self.called(Call::Fetch, what) {
            return ready(Err(e));
        }
        let found = self.stream(uri, range.clone());
        self.fetched.lock().unwrap().push(super::Fetched {
            uri: uri.to_string(),
            range,
            partial: matches!(found, Ok((_, true, _, _))),
        });
        let serving = self.serving.lock().unwrap();
        let latency = serving.latency;
        let delay = if serving.slow.contains(uri) {
            Duration::from_secs(1)
        } else {
            serving.chunk_delay
        };
        let chunk = serving.chunk_size;
        let corrupt = serving.corrupt.contains(uri);
        drop(serving);
        let break_at = {
            let mut serving = self.serving.lock().unwrap();
            match serving.breaks.as_mut() {
                Some((after, times)) if *times > 0 && found.is_ok() => {
                    *times -= 1;
                    Some(*after)
                }
                _ => None,
            }
        };
        let report_total = self.report_total.load(Ordering::SeqCst);
        let served = self.served.clone();
        let in_flight = self.in_flight.clone();
        let n = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(n, Ordering::SeqCst);
        let guard = InFlight(in_flight);
        let url = format!("http://fake.invalid{uri}");
        async move {
            tokio::time::sleep(latency).await;
            let (content, partial, start, end) = found?;
            let size = content.len();
            let body = stream::unfold((start, 0u64, guard), move |(pos, sent, guard)| {
                let content = content.clone();
                let served = served.clone();
                let url = url.clone();
                async move {
                    if pos >= end {
                        return None;
                    }
                    if break_at.is_some_and(|k| sent >= k) {
                        let e = XnatError::Network {
                            method: "GET".into(),
                            url,
                            attempts: 1,
                            detail: "download cut short: connection reset".into(),
                        };
                        return Some((Err(e), (end, sent, guard)));
                    }
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let mut max = chunk.min(end - pos);
                    if let Some(k) = break_at {
                        max = max.min(k - sent).max(1);
                    }
                    let mut bytes = content.chunk(pos, max);
                    let mid = size / 2;
                    if corrupt && (pos..pos + bytes.len() as u64).contains(&mid) {
                        let mut v = bytes.to_vec();
                        v[(mid - pos) as usize] ^= 0xff;
                        bytes = Bytes::from(v);
                    }
                    let n = bytes.len() as u64;
                    served.fetch_add(n, Ordering::SeqCst);
                    Some((Ok(bytes), (pos + n, sent + n, guard)))
                }
            });
            Ok(Download {
                partial,
                offset: start,
                length: Some(end - start),
                total_size: (partial || report_total).then_some(size),
                last_modified: None,
                body: body.boxed(),
            })
        }
        .boxed()
    }

    fn upload<'a>(
        &'a self,
        file: &'a FileAddr,
        source: &'a Path,
        replace: bool,
        _prefix: Option<crate::xnat::HashedPrefix>,
    ) -> BoxFuture<'a, Result<Uploaded>> {
        async move {
            let target = paths::file(file);
            self.called(Call::Upload, target.raw().to_string())?;
            let mut data = tokio::fs::read(source).await.map_err(|e| {
                XnatError::io(format!("reading {} to upload it", source.display()), e)
            })?;
            let md5 = md5_hex(&data);
            let size = data.len() as u64;
            let damage = !data.is_empty()
                && self
                    .damaged_uploads
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
            if damage {
                data[0] ^= 0xff;
            }
            let delay = self.serving.lock().unwrap().upload_delay;
            tokio::time::sleep(delay).await;
            {
                let mut a = self.archive();
                let at = match a.resource("PUT", &file.owner, &file.resource) {
                    Ok(at) => at,
                    // XNAT makes a missing resource on upload.
                    Err(_) => {
                        let owner = a.owner("PUT", &file.owner)?;
                        a.add_resource(owner, &file.resource)
                    }
                };
                let r = &mut a.resources[at];
                if r.file(&file.path).is_some() && !replace {
                    return Err(XnatError::Duplicate {
                        url: format!("http://fake.invalid{}", target.raw()),
                        paths: vec![file.path.clone()],
                        ambiguous: false,
                    });
                }
                r.put(
                    &file.path,
                    File {
                        digest: Some(md5_hex(&data)),
                        content: Content::Bytes(Bytes::from(data)),
                        listed_size: None,
                        format: String::new(),
                    },
                );
            }
            let lose = self
                .lost_answers
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if lose {
                return Err(XnatError::Network {
                    method: "PUT".into(),
                    url: format!("http://fake.invalid{}", target.raw()),
                    attempts: 1,
                    detail: "connection reset before the answer".into(),
                });
            }
            Ok(Uploaded { size, md5 })
        }
        .boxed()
    }

    fn create<'a>(&'a self, object: &'a NewObject) -> BoxFuture<'a, Result<Created>> {
        ready(
            self.called(Call::Create, format!("{object:?}"))
                .and_then(|()| self.archive().create(object)),
        )
    }

    fn delete<'a>(&'a self, object: &'a Removal) -> BoxFuture<'a, Result<()>> {
        ready(
            self.called(Call::Delete, format!("{object:?}"))
                .and_then(|()| self.archive().delete(object)),
        )
    }
}
