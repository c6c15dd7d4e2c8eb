//! Parsing an archive path (after `/data`, `/data/archive` or `/REST`) into
//! collection steps: `projects/P/subjects/S/experiments/E/scans/1/resources/R/files/a/b`.
//! `files` takes the whole rest of the path, percent-decoded; a trailing `/`
//! there asks for a folder listing.

use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coll {
    Projects,
    Subjects,
    Experiments,
    Scans,
    Assessors,
    /// Resources, or an assessor's `out/resources`.
    Resources,
    /// An assessor's `in/resources`.
    InResources,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub coll: Coll,
    pub key: Option<String>,
}

/// The `files…` tail of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesSel {
    /// Relative path after `files/`, percent-decoded, without a trailing `/` ("" = all).
    pub path: String,
    /// The path ended with `/`: list that folder.
    pub folder: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePath {
    pub steps: Vec<Step>,
    pub files: Option<FilesSel>,
}

pub fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Parses the part after the prefix, e.g. `projects/P/subjects`. None = not an archive path.
pub fn parse(rest: &str) -> Option<ArchivePath> {
    let raw: Vec<&str> = rest.split('/').collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let seg = decode(raw[i]);
        let coll = match seg.as_str() {
            "" if i + 1 == raw.len() => break,
            "projects" => Coll::Projects,
            "subjects" => Coll::Subjects,
            "experiments" => Coll::Experiments,
            "scans" => Coll::Scans,
            "assessors" => Coll::Assessors,
            "resources" => Coll::Resources,
            "out" | "in" if raw.get(i + 1).map(|s| decode(s)) == Some("resources".into()) => {
                i += 1;
                if seg == "out" {
                    Coll::Resources
                } else {
                    Coll::InResources
                }
            }
            "files" => {
                let tail = raw[i + 1..].join("/");
                let folder = tail.ends_with('/') || (tail.is_empty() && raw.len() > i + 1);
                let path = decode(tail.trim_end_matches('/'));
                return (!steps.is_empty()).then_some(ArchivePath {
                    steps,
                    files: Some(FilesSel { path, folder }),
                });
            }
            _ => return None,
        };
        let key = raw.get(i + 1).map(|k| decode(k)).filter(|k| !k.is_empty());
        let has_key = key.is_some();
        steps.push(Step { coll, key });
        i += if has_key { 2 } else { 1 };
        if !has_key && i < raw.len() && !(i + 1 == raw.len() && raw[i].is_empty()) {
            // an empty key in the middle (`projects//x`)
            return None;
        }
    }
    (!steps.is_empty()).then_some(ArchivePath { steps, files: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(coll: Coll, key: &str) -> Step {
        Step {
            coll,
            key: Some(key.into()),
        }
    }

    #[test]
    fn full_path_with_nested_files() {
        let p = parse("projects/P/subjects/S/experiments/E/scans/1/resources/R/files/a/b%20c.nii")
            .unwrap();
        assert_eq!(p.steps.len(), 5);
        assert_eq!(p.steps[4], step(Coll::Resources, "R"));
        assert_eq!(
            p.files,
            Some(FilesSel {
                path: "a/b c.nii".into(),
                folder: false
            })
        );
    }

    #[test]
    fn collections_and_folders() {
        let p = parse("projects/P/subjects").unwrap();
        assert_eq!(
            p.steps[1],
            Step {
                coll: Coll::Subjects,
                key: None
            }
        );
        let p = parse("projects/").unwrap();
        assert_eq!(
            p.steps,
            vec![Step {
                coll: Coll::Projects,
                key: None
            }]
        );
        let p = parse("experiments/E/resources/R/files/sub/").unwrap();
        assert_eq!(
            p.files,
            Some(FilesSel {
                path: "sub".into(),
                folder: true
            })
        );
        let p = parse("experiments/E/scans/ALL/files").unwrap();
        assert_eq!(
            p.files,
            Some(FilesSel {
                path: "".into(),
                folder: false
            })
        );
    }

    #[test]
    fn assessor_out_resources_and_encoded_labels() {
        let p = parse("experiments/E/assessors/A/out/resources/R%2Fx/files/f").unwrap();
        assert_eq!(p.steps[2], step(Coll::Resources, "R/x"));
        assert!(parse("bogus/x").is_none());
        assert!(parse("projects//subjects").is_none());
    }
}
