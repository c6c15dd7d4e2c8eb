//! Every XNAT URL path the client uses, built in one place with each segment percent-encoded.
//!
//! An [`ApiPath`] is an already-encoded path below the server's base URL (`/data/…`).
//! Names (labels, IDs, file names) go in raw and come out encoded, so a label or file name can
//! hold anything (`/`, `?`, `#`, `%`, spaces, non-ASCII); a path inside a resource keeps its
//! `/` separators. Paths are checked before use: an empty, `.` or `..` segment would be
//! rewritten by URL normalisation and reach another object, so it is refused instead.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::error::{Result, XnatError};

/// Bytes left as they are in a path segment: RFC 3986 "unreserved" characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An encoded path below the base URL, e.g. `/data/projects/P%201/resources`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiPath(String);

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
        ApiPath(s.to_string())
    }

    /// A path as the server wrote it in a listing's `URI` column (not encoded), e.g.
    /// `/data/experiments/XNAT_E00001/scans/1/resources/12/files/sub dir/a.dcm`.
    pub fn from_uri(uri: &str) -> Self {
        let uri = if uri.starts_with('/') {
            uri.to_string()
        } else {
            format!("/{uri}")
        };
        ApiPath(encode_relpath(&uri))
    }

    /// The encoded path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This path with one more segment, `name` encoded.
    pub fn child(&self, name: &str) -> Self {
        ApiPath(format!("{}/{}", self.0, encode_segment(name)))
    }

    /// This path with a fixed word appended (`scans`, `resources`, `files`, …).
    fn word(&self, word: &str) -> Self {
        ApiPath(format!("{}/{}", self.0, word))
    }

    /// Refuse paths that URL normalisation would change: empty, `.` or `..` segments
    /// (a single trailing `/` below `…/files/`, which asks for a folder listing, is allowed).
    pub fn check(&self) -> Result<()> {
        let invalid = |reason: &str| XnatError::InvalidPath {
            path: self.0.clone(),
            reason: reason.to_string(),
        };
        let Some(rest) = self.0.strip_prefix('/') else {
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
        ApiPath(format!("{}/files/{}", self.0, encode_relpath(relpath)))
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

    /// `…/out/resources` below an assessor: its output resources.
    pub fn out_resources(&self) -> Self {
        self.word("out/resources")
    }

    /// `…/out/resources/{label}` below an assessor.
    pub fn out_resource(&self, label: &str) -> Self {
        self.out_resources().child(label)
    }
}

impl fmt::Display for ApiPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `/data/JSESSION`: log in (POST), keep alive (GET), log out (DELETE).
pub fn jsession() -> ApiPath {
    ApiPath::literal("/data/JSESSION")
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
            e.assessor("A1").out_resources().as_str(),
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
        assert!(ApiPath("/data/%2e%2E/x".into()).check().is_err());
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
    }
}
