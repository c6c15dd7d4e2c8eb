//! The archive model: projects, subjects, experiments (image sessions and
//! assessors), scans, resources and their catalogued files, and the users
//! who may read them.
//!
//! The model stores any string as a label or file name; the REST layer is
//! what validates labels the way XNAT does. Lookups follow XNAT's rules: a
//! path key may be an accession ID or a project-scoped label.

mod archive;
mod experiment;
mod labels;
mod project;
mod resource;
mod subject;
mod user;
pub mod xsi;

pub use archive::{Archive, NextIds};
pub use experiment::{Experiment, Scan};
pub use labels::{is_valid_label, now_ms, xnat_timestamp};
pub use project::Project;
pub use resource::{CatalogFile, HistoryFile, Resource, ResourceOwner};
pub use subject::Subject;
pub use user::User;
