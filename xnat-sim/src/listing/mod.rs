//! XNAT's listing tables: rows of string cells, shaped by the query
//! (`columns=`, filters, `limit`/`offset`) and written as the JSON
//! `ResultSet` envelope, CSV, XML or HTML (reference §2.2). Archive
//! collections are query tables of [`Record`]s (XNAT's query organizer);
//! resources, files and search elements are fixed [`Table`]s of [`Row`]s.

mod glob;
mod query;
mod record;
mod render;
pub mod shortcuts;

pub use glob::glob_match;
pub use query::{ListingQuery, QueryTable};
pub use record::{resolve, scan_child, Part, Record};
pub use render::{render, result_objects};

/// One row: every key the endpoint can report, in default-column order first.
#[derive(Debug, Clone, Default)]
pub struct Row(pub Vec<(String, String)>);

impl Row {
    pub fn new() -> Row {
        Row(Vec::new())
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Row {
        self.0.push((key.to_string(), value.into()));
        self
    }

    /// Cell by key, case-insensitively (xpath columns come in any case).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// A fixed listing (resources, files, search elements) before the query filters and pages it.
#[derive(Debug, Clone)]
pub struct Table {
    pub title: &'static str,
    /// Its columns (`columns=` does not change them).
    pub defaults: &'static [&'static str],
    /// Files listings announce `Columns:[{"key":"URI","serverRoot":""}]` and no totalRecords.
    pub file_listing: bool,
    pub rows: Vec<Row>,
}

/// A listing after the query: the columns to print and the cells.
#[derive(Debug, Clone)]
pub struct Shaped {
    pub title: &'static str,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// `totalRecords`, absent when paging or for file listings.
    pub total_records: Option<usize>,
    pub file_listing: bool,
}
