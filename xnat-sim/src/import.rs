//! Loading a directory tree laid out as
//! `project/subject/experiment/scan/resource/files…` (scan folders named `ID`
//! or `ID-type`; files may nest). Names are taken as they are: the library
//! stores any label or path, so a tree of odd names imports as it is.
//! Existing projects, subjects, sessions, scans and resources with the same
//! labels are reused.

use crate::model::{ResourceOwner, Scan};
use crate::populate::add_file;
use crate::store::Store;
use std::io;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Made an owner of every imported project.
    pub owner: Option<String>,
    pub session_type: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            owner: None,
            session_type: "xnat:mrSessionData".into(),
        }
    }
}

fn dirs(p: &Path) -> io::Result<Vec<(String, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            out.push((e.file_name().to_string_lossy().into_owned(), e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Every file below `dir`, as (`/`-joined relative path, full path), sorted.
fn files_below(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, std::path::PathBuf)>,
) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if e.file_type()?.is_dir() {
            files_below(&e.path(), &rel, out)?;
        } else {
            out.push((rel, e.path()));
        }
    }
    Ok(())
}

/// Imports `src` into `store`; returns the number of files catalogued.
pub fn import(store: &Store, src: &Path, options: &ImportOptions) -> io::Result<usize> {
    store.batch(|| import_tree(store, src, options))
}

fn import_tree(store: &Store, src: &Path, options: &ImportOptions) -> io::Result<usize> {
    let mut count = 0;
    for (pid, pdir) in dirs(src)? {
        store.write(|a| {
            if !a.projects.contains_key(&pid) {
                a.add_project(&pid, options.owner.as_deref().unwrap_or(""));
            } else if let (Some(o), Some(p)) = (&options.owner, a.projects.get_mut(&pid)) {
                p.owners.insert(o.clone());
            }
        })?;
        for (slabel, sdir) in dirs(&pdir)? {
            let sid = store.write(|a| match a.subject_in_project(&pid, &slabel) {
                Some(s) if s.label == slabel => s.id.clone(),
                _ => a.add_subject(&pid, &slabel, "import"),
            })?;
            for (elabel, edir) in dirs(&sdir)? {
                let eid = store.write(|a| {
                    let existing = a
                        .subject_experiments(&sid)
                        .find(|e| e.label == elabel)
                        .map(|e| e.id.clone());
                    existing.unwrap_or_else(|| {
                        a.add_experiment(&sid, &elabel, &options.session_type, "import")
                    })
                })?;
                for (scan_dir, scdir) in dirs(&edir)? {
                    let (id, stype) = match scan_dir.split_once('-') {
                        Some((i, t)) => (i.to_string(), t.to_string()),
                        None => (scan_dir.clone(), String::new()),
                    };
                    store.write(|a| {
                        let exists = a
                            .experiments
                            .get(&eid)
                            .is_some_and(|e| e.scans.iter().any(|s| s.id == id));
                        if !exists {
                            a.add_scan(
                                &eid,
                                Scan {
                                    id: id.clone(),
                                    xsi_type: crate::model::xsi::scan_type_for_session(
                                        &options.session_type,
                                    )
                                    .into(),
                                    scan_type: stype.clone(),
                                    series_description: stype.clone(),
                                    quality: "usable".into(),
                                    ..Default::default()
                                },
                            );
                        }
                    })?;
                    let owner = ResourceOwner::Scan {
                        experiment: eid.clone(),
                        scan: id.clone(),
                    };
                    for (rlabel, rdir) in dirs(&scdir)? {
                        let rid = store.write(|a| {
                            let ids = a.resource_ids(&owner);
                            ids.into_iter()
                                .find(|r| a.resources.get(r).is_some_and(|r| r.label == rlabel))
                                .unwrap_or_else(|| a.add_resource(owner.clone(), &rlabel))
                        })?;
                        let mut files = Vec::new();
                        files_below(&rdir, "", &mut files)?;
                        for (rel, full) in files {
                            add_file(store, rid, &rel, std::fs::File::open(full)?)?;
                            count += 1;
                        }
                    }
                }
            }
        }
    }
    Ok(count)
}
