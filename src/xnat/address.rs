//! Where things are in an XNAT archive, by accession ID and label: the owners of resources, a
//! file's place, the objects `mkdir` makes and the ones a delete removes.
//!
//! These are what the filesystem core hands the [`Backend`](super::Backend); only `paths` turns
//! them into REST paths. Owners are saved in the spool's journal records, so their serde shape is
//! part of the on-disk format.

use serde::{Deserialize, Serialize};

/// The object a set of resources hangs off.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owner {
    Project {
        project: String,
    },
    /// `subject` is an accession ID or a label; both address it within its project.
    Subject {
        project: String,
        subject: String,
    },
    Experiment {
        experiment: String,
    },
    Scan {
        experiment: String,
        scan: String,
    },
    /// An assessor's output resources (`…/assessors/A/out/resources`).
    Assessor {
        experiment: String,
        assessor: String,
    },
}

/// A file of a resource: its owner, the resource (label, or the numeric ID a listing gave), and
/// its path inside the resource, `/`-separated, as the server holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileAddr {
    pub owner: Owner,
    pub resource: String,
    pub path: String,
}

/// An object `mkdir` asks the server to make (`PUT` without a body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewObject {
    Subject {
        project: String,
        label: String,
    },
    /// An experiment of `xsi_type` in the subject with label (or ID) `subject`.
    Experiment {
        project: String,
        subject: String,
        label: String,
        xsi_type: String,
    },
    /// A scan `id` of `xsi_type`, with a scan type when `scan_type` is not empty.
    Scan {
        experiment: String,
        id: String,
        scan_type: String,
        xsi_type: String,
    },
    Resource {
        owner: Owner,
        label: String,
    },
}

/// What a delete removes. Everything but a file goes with its files (`removeFiles=true`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    File(FileAddr),
    Subject {
        project: String,
        subject: String,
    },
    Experiment {
        experiment: String,
    },
    Scan {
        experiment: String,
        scan: String,
    },
    /// An assessor of an experiment, by ID or label.
    Assessor {
        experiment: String,
        assessor: String,
    },
    Resource {
        owner: Owner,
        resource: String,
    },
}
