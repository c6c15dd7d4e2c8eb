//! What a listing request asks for: format, columns, filters and paging.

use super::{Row, Shaped, Table};
use crate::model::xsi;

/// Query parameters that steer a request rather than filter rows.
const CONTROL: &[&str] = &[
    "format",
    "columns",
    "limit",
    "offset",
    "sortby",
    "sortorder",
    "recursive",
    "locator",
    "index",
    "accept-not-found",
    "structure",
    "concealhiddenfields",
    "req_format",
    "event_reason",
    "event_type",
    "event_action",
    "event_comment",
    "xsitype",
    "date",
    "file_format",
    "file_content",
    "removefiles",
    "_",
];

#[derive(Debug, Clone, Default)]
pub struct ListingQuery {
    pub format: Option<String>,
    pub columns: Option<Vec<String>>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    /// Whether paging was asked for at all (drops totalRecords).
    pub paged: bool,
    pub filters: Vec<(String, String)>,
}

impl ListingQuery {
    pub fn from_pairs(pairs: &[(String, String)]) -> ListingQuery {
        let mut q = ListingQuery::default();
        for (k, v) in pairs {
            match k.to_ascii_lowercase().as_str() {
                "format" => q.format = Some(v.to_ascii_lowercase()),
                "columns" => {
                    q.columns = Some(
                        v.split(',')
                            .map(|c| c.trim().to_string())
                            .filter(|c| !c.is_empty())
                            .collect(),
                    )
                }
                "limit" => {
                    q.paged = true;
                    q.limit = v.parse().ok();
                }
                "offset" => {
                    q.paged = true;
                    q.offset = v.parse().ok();
                }
                _ => {}
            }
            if !CONTROL.contains(&k.to_ascii_lowercase().as_str()) || is_typed_filter(k) {
                q.filters.push((k.clone(), v.clone()));
            }
        }
        q
    }

    /// Whether `columns=` names any column starting with `prefix` (case-insensitive).
    pub fn wants_column_prefix(&self, prefix: &str) -> bool {
        self.columns.as_ref().is_some_and(|cs| {
            cs.iter().any(|c| {
                c.to_ascii_lowercase()
                    .starts_with(&prefix.to_ascii_lowercase())
            })
        })
    }

    /// Applies filters, column selection and paging.
    pub fn shape(&self, table: Table) -> Shaped {
        let rows: Vec<Row> = table
            .rows
            .into_iter()
            .filter(|r| self.filters.iter().all(|(k, v)| keep(r, k, v)))
            .collect();
        let columns: Vec<String> = match (&self.columns, table.honours_columns) {
            (Some(asked), true) => {
                let mut cols: Vec<String> = Vec::new();
                let known = |c: &str| {
                    rows.first().map_or_else(
                        || table.defaults.iter().any(|d| d.eq_ignore_ascii_case(c)),
                        |r| r.get(c).is_some(),
                    )
                };
                for c in asked {
                    if known(c) && !cols.iter().any(|x| x.eq_ignore_ascii_case(c)) {
                        cols.push(c.clone());
                    }
                }
                for a in table.always {
                    if !cols.iter().any(|x| x.eq_ignore_ascii_case(a)) {
                        cols.push(a.to_string());
                    }
                }
                cols
            }
            _ => table.defaults.iter().map(|s| s.to_string()).collect(),
        };
        let total = rows.len();
        let offset = self.offset.unwrap_or(0);
        let limit = self.limit.unwrap_or(usize::MAX);
        let cells = rows
            .iter()
            .skip(offset)
            .take(limit)
            .map(|r| {
                columns
                    .iter()
                    .map(|c| r.get(c).unwrap_or("").to_string())
                    .collect()
            })
            .collect();
        Shaped {
            title: table.title,
            columns,
            rows: cells,
            total_records: (!self.paged && !table.file_listing).then_some(total),
            file_listing: table.file_listing,
        }
    }
}

/// Filters with their own matching rules.
fn is_typed_filter(k: &str) -> bool {
    matches!(
        k.to_ascii_lowercase().as_str(),
        "xsitype" | "date" | "file_format" | "file_content"
    )
}

fn keep(row: &Row, key: &str, want: &str) -> bool {
    let Some(have) = row.get(key) else {
        return true;
    };
    match key.to_ascii_lowercase().as_str() {
        "xsitype" => want.split(',').any(|w| xsi::matches_filter(have, w.trim())),
        "date" => date_in_range(have, want),
        "file_format" | "file_content" if want == "NULL" => have.is_empty(),
        _ => want.split(',').any(|w| super::glob_match(w.trim(), have)),
    }
}

/// `date=MM/DD/YYYY` or `MM/DD/YYYY-MM/DD/YYYY` against a `YYYY-MM-DD` cell.
fn date_in_range(have: &str, want: &str) -> bool {
    fn iso(us: &str) -> Option<String> {
        let mut p = us.trim().split('/');
        let (m, d, y) = (p.next()?, p.next()?, p.next()?);
        Some(format!("{y:0>4}-{m:0>2}-{d:0>2}"))
    }
    let (lo, hi) = match want.split_once('-') {
        Some((a, b)) if a.contains('/') => (iso(a), iso(b)),
        _ => (iso(want), iso(want)),
    };
    match (lo, hi) {
        (Some(lo), Some(hi)) => !have.is_empty() && have >= lo.as_str() && have <= hi.as_str(),
        _ => have == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            title: "T",
            defaults: &["ID", "label", "URI"],
            always: &["ID", "URI"],
            honours_columns: true,
            file_listing: false,
            rows: (1..=5)
                .map(|i| {
                    Row::new()
                        .with("ID", format!("E{i}"))
                        .with("label", format!("L{i}"))
                        .with("URI", format!("/data/experiments/E{i}"))
                        .with(
                            "xsiType",
                            if i % 2 == 0 {
                                "xnat:ctSessionData"
                            } else {
                                "xnat:mrSessionData"
                            },
                        )
                        .with("date", format!("2024-01-0{i}"))
                })
                .collect(),
        }
    }

    fn q(s: &str) -> ListingQuery {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(s).unwrap();
        ListingQuery::from_pairs(&pairs)
    }

    #[test]
    fn columns_and_always() {
        let s = q("columns=label,xsiType,bogus").shape(table());
        assert_eq!(s.columns, vec!["label", "xsiType", "ID", "URI"]);
        assert_eq!(s.total_records, Some(5));
    }

    #[test]
    fn paging_drops_total() {
        let s = q("limit=2&offset=1").shape(table());
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0][0], "E2");
        assert_eq!(s.total_records, None);
    }

    #[test]
    fn filters() {
        assert_eq!(q("xsiType=xnat:ctSessionData").shape(table()).rows.len(), 2);
        assert_eq!(
            q("xsiType=xnat:imageSessionData").shape(table()).rows.len(),
            5
        );
        assert_eq!(q("label=L*").shape(table()).rows.len(), 5);
        assert_eq!(q("label=L3").shape(table()).rows.len(), 1);
        assert_eq!(q("date=01/02/2024-01/03/2024").shape(table()).rows.len(), 2);
        assert_eq!(q("date=01/05/2024").shape(table()).rows.len(), 1);
    }
}
