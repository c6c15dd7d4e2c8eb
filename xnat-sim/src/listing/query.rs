//! What a listing request asks for (format, columns, filters, paging) and
//! how XNAT's `QueryOrganizerResource` answers it (reference
//! xnat-listings-evidence D1, D2): the root element (the `xsiType=` asked,
//! or the most specific subtype a column or filter names), the root's
//! primary key first, the asked columns (shortcuts by exact name, anything
//! with a `/` as an XML path) headed by their shortcut or else by the
//! lower-cased path, `xsiType` and `project` for the generic experiment
//! roots, `URI` last; every shortcut or path query key is a criterion.
//! Fixed tables (resources, files, search elements) keep their columns.

use super::shortcuts::{normalise, Shortcuts};
use super::{resolve, Record, Row, Shaped, Table};
use crate::model::xsi;

/// Query parameters that steer a fixed table's request rather than filter rows.
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
    /// Every query pair: the criteria of query tables, the filters of fixed ones.
    pub pairs: Vec<(String, String)>,
    /// `xsiType=`, as asked.
    pub xsi_type: Option<String>,
}

/// A listing built by XNAT's query organizer: its shortcuts, root element and defaults.
pub struct QueryTable {
    pub title: &'static str,
    pub shortcuts: &'static Shortcuts,
    /// The root element when nothing asks for a more specific one.
    pub default_root: &'static str,
    /// Default columns (shortcut names) for a root element.
    pub defaults: fn(&str) -> Vec<&'static str>,
    /// Experiment listings add `xsiType` and `project` when the root is a generic
    /// (not secured) experiment type, for their permission check.
    pub type_and_project: bool,
    /// False where XNAT replaces the criteria (scan listings, projects for non-admins).
    pub filters_apply: bool,
    pub records: Vec<Record>,
}

/// The generic experiment types, which XNAT does not secure by themselves.
fn is_unsecured(root: &str) -> bool {
    matches!(
        root.to_ascii_lowercase().as_str(),
        "xnat:experimentdata" | "xnat:subjectassessordata" | "xnat:imagesessiondata"
    )
}

/// Whether a path's element is a type XNAT knows (an unknown path is no criterion).
fn known_element(path: &str) -> bool {
    let norm = normalise(path);
    let element = norm.split('/').next().unwrap_or("");
    xsi::ancestors(element).len() > 1
        || matches!(
            element,
            "xnat:projectdata" | "xnat:subjectdata" | "xnat:experimentdata" | "xnat:imagescandata"
        )
}

/// The primary key path of a root element.
fn primary_key(root: &str) -> String {
    match root.to_ascii_lowercase().as_str() {
        r if xsi::is_scan_type(r) => "xnat:imageScanData/xnat_imagescandata_id".to_string(),
        _ => format!("{root}/ID"),
    }
}

impl ListingQuery {
    pub fn from_pairs(pairs: &[(String, String)]) -> ListingQuery {
        let mut q = ListingQuery {
            pairs: pairs.to_vec(),
            ..Default::default()
        };
        for (k, v) in pairs {
            match k.to_ascii_lowercase().as_str() {
                "format" => q.format = Some(v.to_ascii_lowercase()),
                "columns" => {
                    let cols: Vec<String> = v
                        .split(',')
                        .map(|c| c.trim().to_string())
                        .filter(|c| !c.is_empty())
                        .collect();
                    // Blank or DEFAULT: the defaults.
                    q.columns = (!cols.is_empty() && cols != ["DEFAULT"]).then_some(cols);
                }
                "limit" => {
                    q.paged = true;
                    q.limit = v.parse().ok();
                }
                "offset" => {
                    q.paged = true;
                    q.offset = v.parse().ok();
                }
                "xsitype" => q.xsi_type = Some(v.clone()),
                _ => {}
            }
        }
        q
    }

    /// The pairs that filter a fixed table's rows.
    fn filters(&self) -> impl Iterator<Item = &(String, String)> {
        self.pairs.iter().filter(|(k, _)| {
            !CONTROL.contains(&k.to_ascii_lowercase().as_str()) || is_typed_filter(k)
        })
    }

    /// The XML paths the columns and the filter keys name (shortcuts resolved).
    fn named_paths(&self, shortcuts: &Shortcuts) -> Vec<String> {
        let from_filters = self.pairs.iter().map(|(k, _)| k.as_str());
        let from_columns = self.columns.iter().flatten().map(String::as_str);
        from_filters
            .chain(from_columns)
            .filter_map(|k| {
                if k.contains('/') {
                    Some(k.to_string())
                } else {
                    shortcuts.path_of(k).map(str::to_string)
                }
            })
            .collect()
    }

    /// The root element: `xsiType=` when it names one type, else the default made more
    /// specific by every named path whose element extends it.
    pub fn root(&self, default_root: &str, shortcuts: &Shortcuts) -> String {
        if let Some(t) = self.xsi_type.as_deref() {
            if !t.contains(',') && !t.contains('*') && !t.is_empty() {
                return xsi::canonical(t);
            }
        }
        let mut root = default_root.to_string();
        for path in self.named_paths(shortcuts) {
            let element = path.split('/').next().unwrap_or("");
            if !element.eq_ignore_ascii_case(&root) && xsi::extends(element, &root) {
                root = xsi::canonical(element);
            }
        }
        root
    }

    /// The scan element the columns or filters join, most specific first, and whether they
    /// also name the scans' resources (`xnat:imagescandata/file/…`), which makes a row per
    /// scan and resource instead of a row per scan.
    pub fn scan_join(&self, shortcuts: &Shortcuts) -> Option<(String, bool)> {
        let mut join: Option<(String, bool)> = None;
        for path in self.named_paths(shortcuts) {
            let norm = super::scan_child(&normalise(&path));
            let Some((element, field)) = norm.split_once('/') else {
                continue;
            };
            if !xsi::is_scan_type(element) {
                continue;
            }
            let files = field.starts_with("file/");
            join = Some(match join {
                None => (element.to_string(), files),
                Some((e, f)) => {
                    let specific = if xsi::ancestors(element).len() > xsi::ancestors(&e).len() {
                        element.to_string()
                    } else {
                        e
                    };
                    (specific, f || files)
                }
            });
        }
        join
    }

    /// The (header, path) of each column of a query table, `URI` last (path empty).
    fn query_columns(&self, t: &QueryTable, root: &str) -> Vec<(String, String)> {
        let header_of = |path: &str| {
            t.shortcuts
                .name_of(path)
                .map(str::to_string)
                .unwrap_or_else(|| path.to_ascii_lowercase())
        };
        let mut cols: Vec<(String, String)> = Vec::new();
        let mut add = |header: String, path: String| {
            if !cols.iter().any(|(h, _)| h.eq_ignore_ascii_case(&header)) {
                cols.push((header, path));
            }
        };
        let pk = primary_key(root);
        add(header_of(&pk), pk);
        let asked: Vec<String> = match &self.columns {
            Some(c) => c.clone(),
            None => (t.defaults)(root).iter().map(|s| s.to_string()).collect(),
        };
        for c in &asked {
            if c.contains('/') {
                add(header_of(c), c.clone());
            } else if let Some(path) = t.shortcuts.path_of(c) {
                add(c.clone(), path.to_string());
            }
        }
        if t.type_and_project && is_unsecured(root) {
            for s in ["xsiType", "project"] {
                if let Some(path) = t.shortcuts.path_of(s) {
                    add(s.to_string(), path.to_string());
                }
            }
        }
        add("URI".to_string(), String::new());
        cols
    }

    /// The criteria of a query table.
    fn criteria(&self, t: &QueryTable) -> Vec<Criterion> {
        if !t.filters_apply {
            return Vec::new();
        }
        self.pairs
            .iter()
            .filter_map(|(k, v)| {
                let path = if k.contains('/') {
                    k.clone()
                } else if k != "xsiType" {
                    t.shortcuts.path_of(k)?.to_string()
                } else {
                    return None;
                };
                known_element(&path).then(|| Criterion::new(&path, v))
            })
            .collect()
    }

    /// Shapes a query table: root element, criteria, columns, paging.
    pub fn shape_query(&self, t: QueryTable) -> Shaped {
        let root = self.root(t.default_root, t.shortcuts);
        let types: Option<Vec<&str>> = self
            .xsi_type
            .as_deref()
            .map(|x| x.split(',').map(str::trim).collect());
        let criteria = self.criteria(&t);
        let columns = self.query_columns(&t, &root);
        // Each column's path resolved once, not once per row.
        let paths: Vec<String> = columns.iter().map(|(_, p)| resolve(p)).collect();
        let records: Vec<&Record> = t
            .records
            .iter()
            .filter(|r| match &types {
                Some(ts) => ts.iter().any(|x| xsi::matches_filter(&r.xsi_type, x)),
                None => xsi::extends(&r.xsi_type, &root),
            })
            .filter(|r| criteria.iter().all(|c| c.holds(r.get_resolved(&c.path))))
            .collect();
        let total = records.len();
        let cells = records
            .iter()
            .skip(self.offset.unwrap_or(0))
            .take(self.limit.unwrap_or(usize::MAX))
            .map(|r| {
                columns
                    .iter()
                    .zip(&paths)
                    .map(|((h, path), resolved)| {
                        if path.is_empty() && h == "URI" {
                            r.uri.clone()
                        } else {
                            r.get_resolved(resolved).to_string()
                        }
                    })
                    .collect()
            })
            .collect();
        Shaped {
            title: t.title,
            columns: columns.into_iter().map(|(h, _)| h).collect(),
            rows: cells,
            total_records: (!self.paged).then_some(total),
            file_listing: false,
        }
    }

    /// Applies filters and paging to a fixed table (its columns stay as they are).
    pub fn shape(&self, table: Table) -> Shaped {
        let rows: Vec<Row> = table
            .rows
            .into_iter()
            .filter(|r| self.filters().all(|(k, v)| keep(r, k, v)))
            .collect();
        let columns: Vec<String> = table.defaults.iter().map(|s| s.to_string()).collect();
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

/// One criterion, as XNAT's `processQueryCriteria` builds it: a comma list is an OR; `*` or
/// `%` make a LIKE; a date field takes `MM/DD/YYYY` or a `from-to` range; values compare
/// case-sensitively (SQL on PostgreSQL).
struct Criterion {
    /// The path, [`resolve`]d.
    path: String,
    dated: bool,
    want: String,
}

impl Criterion {
    fn new(path: &str, want: &str) -> Criterion {
        let path = resolve(path);
        let leaf = path.rsplit('/').next().unwrap_or("");
        let dated = leaf == "date" || leaf.ends_with("_date");
        Criterion {
            path,
            dated,
            want: want.to_string(),
        }
    }

    fn holds(&self, have: &str) -> bool {
        self.want.split(',').map(str::trim).any(|w| {
            if self.dated && w.contains('/') {
                date_in_range(have, w)
            } else if w.contains('*') || w.contains('%') {
                like(&w.replace('%', "*"), have)
            } else {
                have == w
            }
        })
    }
}

/// `*` wildcards, case-sensitive.
fn like(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return text == pattern;
    }
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
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
    // Dates with a time (insert_date) compare on their day.
    let day = have.get(..10).unwrap_or(have);
    match (lo, hi) {
        (Some(lo), Some(hi)) => !have.is_empty() && day >= lo.as_str() && day <= hi.as_str(),
        _ => have == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::shortcuts::EXPERIMENT;
    use crate::listing::Part;

    fn defaults(_: &str) -> Vec<&'static str> {
        vec!["ID", "project", "date", "xsiType", "label", "insert_date"]
    }

    fn table() -> QueryTable {
        QueryTable {
            title: "Experiments",
            shortcuts: &EXPERIMENT,
            default_root: "xnat:experimentData",
            defaults,
            type_and_project: true,
            filters_apply: true,
            records: (1..=5)
                .map(|i| {
                    let t = if i % 2 == 0 {
                        "xnat:ctSessionData"
                    } else {
                        "xnat:mrSessionData"
                    };
                    Record::new(
                        t,
                        format!("/data/experiments/E{i}"),
                        Part::new(t)
                            .with("xnat:experimentData/ID", format!("E{i}"))
                            .with("xnat:experimentData/label", format!("L{i}"))
                            .with("xnat:experimentData/project", "P")
                            .with("xnat:experimentData/date", format!("2024-01-0{i}"))
                            .with("xnat:experimentData/extension_item/element_name", t)
                            .with("xnat:subjectAssessorData/subject_ID", format!("S{i}")),
                    )
                })
                .collect(),
        }
    }

    fn q(s: &str) -> ListingQuery {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(s).unwrap();
        ListingQuery::from_pairs(&pairs)
    }

    #[test]
    fn columns_take_shortcut_or_lower_path_headers() {
        let s =
            q("columns=label,xnat:experimentData/date,xnat:mrSessionData/subject_ID,bogus,Label")
                .shape_query(table());
        // the root became xnat:mrSessionData (a column names it): its key first, MR rows only,
        // no xsiType/project (a secured type), URI last
        assert_eq!(
            s.columns,
            vec![
                "xnat:mrsessiondata/id",
                "label",
                "date",
                "xnat:mrsessiondata/subject_id",
                "URI"
            ]
        );
        assert_eq!(s.rows.len(), 3);
        assert_eq!(
            s.rows[0],
            vec!["E1", "L1", "2024-01-01", "S1", "/data/experiments/E1"]
        );
    }

    #[test]
    fn generic_roots_add_type_and_project() {
        let s = q("xsiType=xnat:subjectAssessorData&columns=ID").shape_query(table());
        assert_eq!(
            s.columns,
            vec![
                "xnat:subjectassessordata/id",
                "ID",
                "xsiType",
                "project",
                "URI"
            ]
        );
        assert_eq!(s.total_records, Some(5));
    }

    #[test]
    fn paging_drops_total() {
        let s = q("limit=2&offset=1").shape_query(table());
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0][0], "E2");
        assert_eq!(s.total_records, None);
    }

    #[test]
    fn filters() {
        let n = |query: &str| q(query).shape_query(table()).rows.len();
        assert_eq!(n("xsiType=xnat:ctSessionData"), 2);
        assert_eq!(n("xsiType=xnat:imageSessionData"), 5);
        assert_eq!(n("label=L*"), 5);
        assert_eq!(n("label=L3"), 1);
        assert_eq!(n("label=l3"), 0, "values compare case-sensitively");
        assert_eq!(n("label=L1,L3"), 2);
        assert_eq!(n("xnat:experimentData/label=L4"), 1);
        assert_eq!(
            n("xnat:subjectData/label=S1"),
            0,
            "a path the rows lack matches nothing"
        );
        assert_eq!(
            n("xnat:nosuchType/label=x"),
            5,
            "an unknown path is no criterion"
        );
        assert_eq!(n("bogus=1"), 5, "neither a shortcut nor a path: ignored");
        assert_eq!(n("date=01/02/2024-01/03/2024"), 2);
        assert_eq!(n("date=01/05/2024"), 1);
    }

    #[test]
    fn like_patterns() {
        assert!(like("GSU*", "GSU_001"));
        assert!(!like("GSU*", "gsu_001"));
        assert!(like("*", ""));
        assert!(like("a*c*e", "abcde"));
        assert!(!like("a*c", "abd"));
        assert!(!like("ab*ba", "aba"));
    }
}
