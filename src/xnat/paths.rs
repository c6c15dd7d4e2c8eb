//! Every XNAT URL path the client uses, built in one place with each segment percent-encoded.
//!
//! An [`ApiPath`] is a path below the server's base URL (`/data/…`), kept twice: encoded, as
//! requests send it, and raw, as XNAT writes URIs in its listings (what `user.xnat.uri` shows).
//! Names (labels, IDs, file names) go in raw and come out encoded, so a label or file name can
//! hold anything (`/`, `?`, `#`, `%`, spaces, non-ASCII); a path inside a resource keeps its
//! `/` separators. Paths are checked before use: an empty, `.` or `..` segment would be
//! rewritten by URL normalisation and reach another object, so it is refused instead.
//!
//! The addresses of the archive (`address`) become paths only here: [`owner`], [`resource`],
//! [`file`].

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::address::{FileAddr, Owner};
use super::error::{Result, XnatError};

/// Bytes left as they are in a path segment: RFC 3986 "unreserved" characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path below the base URL, e.g. `/data/projects/P%201/resources` (raw: `/data/projects/P 1/resources`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiPath {
    encoded: String,
    raw: String,
}

/// One path segment, percent-encoded (a `/` inside it is encoded too).
pub fn encode_segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// A relative path inside a resource: each segment encoded, `/` kept between them.
pub fn encode_relpath(relpath: &str) -> String {
    relpath
        .split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

impl ApiPath {
    fn literal(s: &str) -> Self {
        ApiPath {
            encoded: s.to_string(),
            raw: s.to_string(),
        }
    }

    /// A path as the server wrote it in a listing's `URI` column (not encoded), e.g.
    /// `/data/experiments/XNAT_E00001/scans/1/resources/12/files/sub dir/a.dcm`.
    pub fn from_uri(uri: &str) -> Self {
        let uri = if uri.starts_with('/') {
            uri.to_string()
        } else {
            format!("/{uri}")
        };
        ApiPath {
            encoded: encode_relpath(&uri),
            raw: uri,
        }
    }

    /// The encoded path.
    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    /// The path as XNAT writes it in listings: not encoded.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// This path with one more segment, `name` encoded.
    pub fn child(&self, name: &str) -> Self {
        ApiPath {
            encoded: format!("{}/{}", self.encoded, encode_segment(name)),
            raw: format!("{}/{name}", self.raw),
        }
    }

    /// This path with a fixed word appended (`scans`, `resources`, `files`, …).
    fn word(&self, word: &str) -> Self {
        ApiPath {
            encoded: format!("{}/{word}", self.encoded),
            raw: format!("{}/{word}", self.raw),
        }
    }

    /// Refuse paths that URL normalisation would change: empty, `.` or `..` segments
    /// (a single trailing `/` below `…/files/`, which asks for a folder listing, is allowed).
    pub fn check(&self) -> Result<()> {
        let invalid = |reason: &str| XnatError::InvalidPath {
            path: self.encoded.clone(),
            reason: reason.to_string(),
        };
        let Some(rest) = self.encoded.strip_prefix('/') else {
            return Err(invalid("a server path must start with '/'"));
        };
        // A trailing `/` inside a resource's files asks for a folder listing.
        let rest = match rest.strip_suffix('/') {
            Some(folder) if folder.contains("/files/") => folder,
            _ => rest,
        };
        for seg in rest.split('/') {
            let decoded = seg.replace("%2E", ".").replace("%2e", ".");
            if seg.is_empty() {
                return Err(invalid("it has an empty name in it"));
            }
            if decoded == "." || decoded == ".." {
                return Err(invalid("'.' and '..' cannot be used as names"));
            }
        }
        Ok(())
    }

    /// `…/resources` below a project, subject, experiment, scan or assessor.
    pub fn resources(&self) -> Self {
        self.word("resources")
    }

    /// `…/resources/{label or id}`.
    pub fn resource(&self, label: &str) -> Self {
        self.resources().child(label)
    }

    /// `…/files` below a resource: its file listing.
    pub fn files(&self) -> Self {
        self.word("files")
    }

    /// `…/files/{relpath}` below a resource, the relpath's `/` kept.
    pub fn file(&self, relpath: &str) -> Self {
        ApiPath {
            encoded: format!("{}/files/{}", self.encoded, encode_relpath(relpath)),
            raw: format!("{}/files/{relpath}", self.raw),
        }
    }

    /// `…/scans` below an experiment.
    pub fn scans(&self) -> Self {
        self.word("scans")
    }

    /// `…/scans/{id}` below an experiment.
    pub fn scan(&self, scan_id: &str) -> Self {
        self.scans().child(scan_id)
    }

    /// `…/scans/ALL/files`: every file of every scan of a session in one listing.
    pub fn all_scan_files(&self) -> Self {
        self.word("scans/ALL/files")
    }

    /// `…/assessors` below an experiment.
    pub fn assessors(&self) -> Self {
        self.word("assessors")
    }

    /// `…/assessors/{id or label}` below an experiment.
    pub fn assessor(&self, assessor: &str) -> Self {
        self.assessors().child(assessor)
    }
}

impl fmt::Display for ApiPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encoded)
    }
}

/// `/data/JSESSION`: log in (POST), keep alive (GET), log out (DELETE).
pub fn jsession() -> ApiPath {
    ApiPath::literal("/data/JSESSION")
}

/// `/data/services/tokens/issue`: a new alias token for the logged-in user.
pub fn token_issue() -> ApiPath {
    ApiPath::literal("/data/services/tokens/issue")
}

/// `/data/projects`.
pub fn projects() -> ApiPath {
    ApiPath::literal("/data/projects")
}

/// `/data/projects/{P}`.
pub fn project(project: &str) -> ApiPath {
    projects().child(project)
}

/// `/data/projects/{P}/subjects`.
pub fn project_subjects(project_id: &str) -> ApiPath {
    project(project_id).word("subjects")
}

/// `/data/projects/{P}/subjects/{S}`, S a label or accession ID.
pub fn subject(project_id: &str, subject: &str) -> ApiPath {
    project_subjects(project_id).child(subject)
}

/// `/data/projects/{P}/experiments`.
pub fn project_experiments(project_id: &str) -> ApiPath {
    project(project_id).word("experiments")
}

/// `/data/projects/{P}/subjects/{S}/experiments/{E}`: the label form, needed to create one.
pub fn subject_experiment(project_id: &str, subject_label: &str, experiment: &str) -> ApiPath {
    subject(project_id, subject_label)
        .word("experiments")
        .child(experiment)
}

/// `/data/experiments`: the site-wide experiment table (filter it by `project=`).
pub fn experiments() -> ApiPath {
    ApiPath::literal("/data/experiments")
}

/// `/data/experiments/{ID}`: an experiment by accession ID.
pub fn experiment(experiment_id: &str) -> ApiPath {
    experiments().child(experiment_id)
}

/// The path of a resource owner, under which `/resources/…` lives (an assessor's output
/// resources are under `…/assessors/A/out`).
pub fn owner(owner: &Owner) -> ApiPath {
    match owner {
        Owner::Project { project: p } => project(p),
        Owner::Subject {
            project: p,
            subject: s,
        } => subject(p, s),
        Owner::Experiment { experiment: e } => experiment(e),
        Owner::Scan {
            experiment: e,
            scan,
        } => experiment(e).scan(scan),
        Owner::Assessor {
            experiment: e,
            assessor,
        } => experiment(e).assessor(assessor).word("out"),
    }
}

/// `…/resources/{label or id}` of an owner.
pub fn resource(of: &Owner, resource: &str) -> ApiPath {
    owner(of).resource(resource)
}

/// `…/resources/{R}/files/{path}`: a file of a resource.
pub fn file(file: &FileAddr) -> ApiPath {
    resource(&file.owner, &file.resource).file(&file.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(projects().as_str(), "/data/projects");
        assert_eq!(
            subject("P1", "S 1").resource("NIFTI").files().as_str(),
            "/data/projects/P1/subjects/S%201/resources/NIFTI/files"
        );
        assert_eq!(
            project_experiments("P1").as_str(),
            "/data/projects/P1/experiments"
        );
        assert_eq!(
            subject_experiment("P", "S", "E").as_str(),
            "/data/projects/P/subjects/S/experiments/E"
        );
        let e = experiment("XNAT_E00001");
        assert_eq!(
            e.scan("1").resource("DICOM").file("a/b c.dcm").as_str(),
            "/data/experiments/XNAT_E00001/scans/1/resources/DICOM/files/a/b%20c.dcm"
        );
        assert_eq!(
            e.all_scan_files().as_str(),
            "/data/experiments/XNAT_E00001/scans/ALL/files"
        );
        assert_eq!(
            e.assessor("A1").child("out").resources().as_str(),
            "/data/experiments/XNAT_E00001/assessors/A1/out/resources"
        );
        assert_eq!(jsession().as_str(), "/data/JSESSION");
    }

    #[test]
    fn hostile_names_are_encoded() {
        let p = project("P").child("a/b?c#d%e&f=g+h é");
        assert_eq!(
            p.as_str(),
            "/data/projects/P/a%2Fb%3Fc%23d%25e%26f%3Dg%2Bh%20%C3%A9"
        );
        assert!(p.check().is_ok());
        assert_eq!(encode_segment("A-z_0.9~"), "A-z_0.9~");
    }

    #[test]
    fn relpath_keeps_slashes_only() {
        assert_eq!(encode_relpath("mri/aseg.mgz"), "mri/aseg.mgz");
        assert_eq!(encode_relpath("a b/c?d/e%f"), "a%20b/c%3Fd/e%25f");
    }

    #[test]
    fn dot_and_empty_segments_are_refused() {
        assert!(project("..").check().is_err());
        assert!(project(".").check().is_err());
        assert!(project("").check().is_err());
        let r = experiment("E").resource("R");
        assert!(r.file("a/../b").check().is_err());
        assert!(r.file("a//b").check().is_err());
        assert!(ApiPath::literal("/data/%2e%2E/x").check().is_err());
        // A trailing slash asks for a folder listing and is fine; dots inside names too.
        assert!(r.file("sub/dir/").check().is_ok());
        assert!(r.file(".hidden/..x").check().is_ok());
    }

    #[test]
    fn listing_uris_are_encoded_for_requests() {
        let p =
            ApiPath::from_uri("/data/experiments/XNAT_E1/scans/1/resources/12/files/d d/x#1.nii");
        assert_eq!(
            p.as_str(),
            "/data/experiments/XNAT_E1/scans/1/resources/12/files/d%20d/x%231.nii"
        );
        assert_eq!(
            ApiPath::from_uri("data/projects/P").as_str(),
            "/data/projects/P"
        );
        assert_eq!(
            p.raw(),
            "/data/experiments/XNAT_E1/scans/1/resources/12/files/d d/x#1.nii"
        );
    }

    #[test]
    fn addresses_become_paths() {
        let scan = Owner::Scan {
            experiment: "E".into(),
            scan: "1".into(),
        };
        let f = file(&FileAddr {
            owner: scan,
            resource: "NIFTI".into(),
            path: "a b/c.nii".into(),
        });
        assert_eq!(
            f.as_str(),
            "/data/experiments/E/scans/1/resources/NIFTI/files/a%20b/c.nii"
        );
        assert_eq!(
            f.raw(),
            "/data/experiments/E/scans/1/resources/NIFTI/files/a b/c.nii"
        );
        let out = Owner::Assessor {
            experiment: "E".into(),
            assessor: "Q".into(),
        };
        assert_eq!(
            resource(&out, "QC").raw(),
            "/data/experiments/E/assessors/Q/out/resources/QC"
        );
        let subject = Owner::Subject {
            project: "P".into(),
            subject: "S 1".into(),
        };
        assert_eq!(owner(&subject).raw(), "/data/projects/P/subjects/S 1");
    }
}
