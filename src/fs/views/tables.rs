//! `<project>/.tables`: the project's metadata as CSV files, one row per object, from the bulk
//! listings a walk already makes.
//!
//! - `subjects.csv`: label, ID, insert_date, URI;
//! - `experiments.csv`: label, ID, subject_label, subject_ID, xsiType, date, insert_date, URI;
//! - `scans.csv`: session_label, session_ID, scan_ID, type, series_description, quality,
//!   resources (labels joined by `;`);
//! - `files.csv`: every scan file: path (in the mount, from the project folder), size, MD5,
//!   format, content, resource, URI.
//!
//! Values are quoted as RFC 4180 says: a value with a comma, a quote or a line break is put in
//! double quotes, its quotes doubled.

use std::collections::HashMap;

use bytes::Bytes;

use super::{add, scan_order, Entry, Listings, ViewTree, TABLES_DIR};
use crate::fs::names;
use crate::fs::node::scan_folder_name;

/// One CSV value.
fn field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn csv(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Bytes {
    let mut out = header.join(",");
    out.push('\n');
    for row in rows {
        let line: Vec<String> = row.iter().map(|v| field(v)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    Bytes::from(out)
}

/// The `.tables` tree of a project.
pub fn tree(l: &Listings<'_>) -> ViewTree {
    let mut tree = ViewTree::new();
    tree.insert(TABLES_DIR.to_string(), Vec::new());
    let mut put = |name: &str, bytes: Bytes| {
        add(&mut tree, TABLES_DIR, name.to_string(), Entry::Made(bytes));
    };
    put(
        "subjects.csv",
        csv(
            &["label", "ID", "insert_date", "URI"],
            l.subjects.iter().map(|s| {
                vec![
                    s.label.clone(),
                    s.id.clone(),
                    s.insert_date.clone(),
                    s.uri.clone(),
                ]
            }),
        ),
    );
    put(
        "experiments.csv",
        csv(
            &[
                "label",
                "ID",
                "subject_label",
                "subject_ID",
                "xsiType",
                "date",
                "insert_date",
                "URI",
            ],
            l.experiments.iter().map(|e| {
                vec![
                    e.label.clone(),
                    e.id.clone(),
                    e.subject_label.clone(),
                    e.subject_id.clone(),
                    e.xsi_type.clone(),
                    e.date.clone(),
                    e.insert_date.clone(),
                    e.uri.clone(),
                ]
            }),
        ),
    );
    let session_label: HashMap<&str, &str> = l
        .experiments
        .iter()
        .map(|e| (e.id.as_str(), e.label.as_str()))
        .collect();
    let mut scans: Vec<_> = l.scans.iter().collect();
    scans.sort_by_key(|s| (s.experiment_id.clone(), scan_order(&s.id)));
    put(
        "scans.csv",
        csv(
            &[
                "session_label",
                "session_ID",
                "scan_ID",
                "type",
                "series_description",
                "quality",
                "resources",
            ],
            scans.iter().map(|s| {
                vec![
                    session_label
                        .get(s.experiment_id.as_str())
                        .unwrap_or(&"")
                        .to_string(),
                    s.experiment_id.clone(),
                    s.id.clone(),
                    s.scan_type.clone(),
                    s.series_description.clone(),
                    s.quality.clone(),
                    s.resources.join(";"),
                ]
            }),
        ),
    );
    put("files.csv", files_csv(l, &session_label));
    tree
}

/// Every scan file with its path in the mount (from the project folder, names as shown).
fn files_csv(l: &Listings<'_>, session_label: &HashMap<&str, &str>) -> Bytes {
    let subject_label: HashMap<&str, &str> = l
        .subjects
        .iter()
        .map(|s| (s.id.as_str(), s.label.as_str()))
        .collect();
    let subject_of: HashMap<&str, &str> = l
        .experiments
        .iter()
        .map(|e| (e.id.as_str(), e.subject_id.as_str()))
        .collect();
    let scan_type: HashMap<(&str, &str), &str> = l
        .scans
        .iter()
        .map(|s| {
            (
                (s.experiment_id.as_str(), s.id.as_str()),
                s.scan_type.as_str(),
            )
        })
        .collect();
    let mut sessions: Vec<&String> = l.scan_files.keys().collect();
    sessions.sort();
    let mut rows = Vec::new();
    for session in sessions {
        let subject = subject_of
            .get(session.as_str())
            .and_then(|s| subject_label.get(s))
            .copied()
            .unwrap_or("");
        let label = session_label.get(session.as_str()).copied().unwrap_or("");
        let mut files: Vec<_> = l.scan_files[session].iter().collect();
        files.sort_by(|a, b| {
            (scan_order(&a.scan_id), a.resource_label(), &a.file.path).cmp(&(
                scan_order(&b.scan_id),
                b.resource_label(),
                &b.file.path,
            ))
        });
        for f in files {
            let folder = scan_folder_name(
                &f.scan_id,
                scan_type
                    .get(&(session.as_str(), f.scan_id.as_str()))
                    .copied()
                    .unwrap_or(""),
            );
            let mut path = vec![
                names::encode(subject),
                names::encode(label),
                names::encode(&folder),
                names::encode(f.resource_label()),
            ];
            path.extend(f.file.path.split('/').map(names::encode));
            rows.push(vec![
                path.join("/"),
                f.file.size.map(|s| s.to_string()).unwrap_or_default(),
                f.file.digest.clone().unwrap_or_default(),
                f.file.format.clone(),
                f.file.content.clone(),
                f.resource_label().to_string(),
                f.file.uri.clone(),
            ]);
        }
    }
    csv(
        &[
            "path", "size", "MD5", "format", "content", "resource", "URI",
        ],
        rows.into_iter(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_as_csv_requires() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        let out = csv(
            &["a", "b"],
            vec![vec!["1".into(), "x,y".into()]].into_iter(),
        );
        assert_eq!(&out[..], b"a,b\n1,\"x,y\"\n");
    }
}
