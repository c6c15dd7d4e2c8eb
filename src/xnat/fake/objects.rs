//! The fake's creates and deletes, with XNAT's answers (reference §2.6): a subject or
//! experiment it has is "existed" (200), an experiment without xsiType is 417, a new scan
//! without one is 400, a resource it has is 409, a file path not in the catalog deletes as a
//! no-op, and everything below a deleted object goes with it.

use super::archive::{not_found, Archive, Experiment, Scan, Subject};
use crate::xnat::address::{NewObject, Owner, Removal};
use crate::xnat::backend::Created;
use crate::xnat::error::{Result, XnatError};
use crate::xnat::paths;

impl Archive {
    pub fn create(&mut self, object: &NewObject) -> Result<Created> {
        let a = self;
        match object {
            NewObject::Subject { project, label } => {
                a.project("PUT", project)?;
                if let Some(s) = a.subject(project, label) {
                    return Ok(Created {
                        existed: true,
                        id: s.id.clone(),
                    });
                }
                let id = format!("XNAT_S{:05}", a.next_id());
                a.subjects.push(Subject {
                    id: id.clone(),
                    label: label.clone(),
                    project: project.clone(),
                });
                Ok(Created { existed: false, id })
            }
            NewObject::Experiment {
                project,
                subject,
                label,
                xsi_type,
            } => {
                a.project("PUT", project)?;
                if xsi_type.is_empty() {
                    let url = paths::subject_experiment(project, subject, label);
                    return Err(XnatError::from_status(
                        "PUT",
                        &format!("http://fake.invalid{url}"),
                        417,
                        "Need PUT Contents".into(),
                    ));
                }
                if let Some(e) = a
                    .experiments
                    .iter()
                    .find(|e| &e.project == project && &e.label == label)
                {
                    return Ok(Created {
                        existed: true,
                        id: e.id.clone(),
                    });
                }
                // XNAT makes the subject when it is missing.
                let subject = match a.subject(project, subject) {
                    Some(s) => s.id.clone(),
                    None => {
                        let id = format!("XNAT_S{:05}", a.next_id());
                        a.subjects.push(Subject {
                            id: id.clone(),
                            label: subject.clone(),
                            project: project.clone(),
                        });
                        id
                    }
                };
                let id = format!("XNAT_E{:05}", a.next_id());
                a.experiments.push(Experiment {
                    id: id.clone(),
                    label: label.clone(),
                    project: project.clone(),
                    subject,
                    xsi_type: xsi_type.clone(),
                    date: String::new(),
                });
                Ok(Created { existed: false, id })
            }
            NewObject::Scan {
                experiment,
                id,
                scan_type,
                xsi_type,
            } => {
                if a.experiment(experiment).is_none() {
                    return Err(not_found("PUT", paths::experiment(experiment).raw()));
                }
                if a.scan(experiment, id).is_some() {
                    // XNAT updates a scan it has, and answers 200 as for a new one.
                    return Ok(Created {
                        existed: false,
                        id: String::new(),
                    });
                }
                if xsi_type.is_empty() {
                    return Err(XnatError::from_status(
                        "PUT",
                        "http://fake.invalid/data/experiments/E/scans/S",
                        400,
                        "retry with ?xsiType=xnat:mrScanData".into(),
                    ));
                }
                a.scans.push(Scan {
                    experiment: experiment.clone(),
                    id: id.clone(),
                    scan_type: scan_type.clone(),
                    series_description: String::new(),
                });
                Ok(Created {
                    existed: false,
                    id: String::new(),
                })
            }
            NewObject::Resource { owner, label } => {
                let canonical = a.owner("PUT", owner)?;
                if a.resource("PUT", owner, label).is_ok() {
                    let url = paths::resource(owner, label);
                    return Err(XnatError::from_status(
                        "PUT",
                        &format!("http://fake.invalid{url}"),
                        409,
                        "Specified resource already exists".into(),
                    ));
                }
                a.add_resource(canonical, label);
                Ok(Created {
                    existed: false,
                    id: String::new(),
                })
            }
        }
    }

    pub fn delete(&mut self, object: &Removal) -> Result<()> {
        let a = self;
        match object {
            Removal::File(file) => {
                let at = a.resource("DELETE", &file.owner, &file.resource)?;
                // A path not in the catalog is a no-op (200).
                a.resources[at].remove(&file.path);
            }
            Removal::Resource { owner, resource } => {
                let at = a.resource("DELETE", owner, resource)?;
                a.resources.remove(at);
            }
            Removal::Scan { experiment, scan } => {
                if a.scan(experiment, scan).is_none() {
                    return Err(not_found(
                        "DELETE",
                        paths::experiment(experiment).scan(scan).raw(),
                    ));
                }
                a.scans
                    .retain(|s| !(&s.experiment == experiment && &s.id == scan));
                let gone = Owner::Scan {
                    experiment: experiment.clone(),
                    scan: scan.clone(),
                };
                a.remove_resources(|o| o == &gone);
            }
            Removal::Assessor {
                experiment,
                assessor,
            } => {
                let owner = Owner::Assessor {
                    experiment: experiment.clone(),
                    assessor: assessor.clone(),
                };
                // Resolved: the assessor by its ID, as its resources' owner is recorded.
                let gone = a.owner("DELETE", &owner)?;
                let Owner::Assessor { assessor: id, .. } = &gone else {
                    unreachable!("an assessor resolves to an assessor");
                };
                a.assessors
                    .retain(|q| !(&q.experiment == experiment && &q.id == id));
                a.remove_resources(|o| o == &gone);
            }
            Removal::Experiment { experiment } => {
                if a.experiment(experiment).is_none() {
                    return Err(not_found("DELETE", paths::experiment(experiment).raw()));
                }
                a.experiments.retain(|e| &e.id != experiment);
                a.scans.retain(|s| &s.experiment != experiment);
                a.assessors.retain(|q| &q.experiment != experiment);
                a.remove_resources(|o| match o {
                    Owner::Experiment { experiment: e }
                    | Owner::Scan { experiment: e, .. }
                    | Owner::Assessor { experiment: e, .. } => e == experiment,
                    _ => false,
                });
            }
            Removal::Subject { project, subject } => {
                let Some(id) = a.subject(project, subject).map(|s| s.id.clone()) else {
                    return Err(not_found("DELETE", paths::subject(project, subject).raw()));
                };
                let sessions: Vec<String> = a
                    .experiments
                    .iter()
                    .filter(|e| e.subject == id)
                    .map(|e| e.id.clone())
                    .collect();
                a.subjects.retain(|s| s.id != id);
                a.experiments.retain(|e| e.subject != id);
                a.scans.retain(|s| !sessions.contains(&s.experiment));
                a.assessors.retain(|q| !sessions.contains(&q.experiment));
                a.remove_resources(|o| match o {
                    Owner::Subject { subject, .. } => subject == &id,
                    Owner::Experiment { experiment: e }
                    | Owner::Scan { experiment: e, .. }
                    | Owner::Assessor { experiment: e, .. } => sessions.contains(e),
                    _ => false,
                });
            }
        }
        Ok(())
    }
}
