//! Parsing XNAT's listing envelope: `{"ResultSet":{"Result":[{…},…],"totalRecords":"N",…}}`.
//!
//! XNAT writes every cell as a string; numbers, booleans and nulls are accepted anyway and
//! turned into strings (null → ""), so typed rows (`model`) parse from one representation.
//! Anything else (not JSON, no `ResultSet.Result` array, a row that is not an object) is a
//! protocol error, never a panic.

use std::collections::HashMap;

use serde_json::Value;

use super::error::{Result, XnatError};

/// One row of a listing: column name → cell text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row(HashMap<String, String>);

impl Row {
    /// A row from column/value pairs (handy for fakes and tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Row(pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }

    /// The cell of a column, matched exactly first and then ignoring ASCII case (XNAT is not
    /// consistent about the case of `columns=` keys such as `xnat:imagescandata/id`).
    pub fn get(&self, column: &str) -> Option<&str> {
        if let Some(v) = self.0.get(column) {
            return Some(v);
        }
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(column))
            .map(|(_, v)| v.as_str())
    }

    /// The cell of a column, "" when the column is absent.
    pub fn text(&self, column: &str) -> &str {
        self.get(column).unwrap_or("")
    }

    /// The first of several spellings of a column that is present.
    pub fn text_any(&self, columns: &[&str]) -> &str {
        columns.iter().find_map(|c| self.get(c)).unwrap_or("")
    }

    /// All columns and cells.
    pub fn cells(&self) -> &HashMap<String, String> {
        &self.0
    }
}

/// A parsed listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The rows, in the server's order.
    pub rows: Vec<Row>,
    /// `totalRecords`, when the server sent it (absent from file listings and paged answers).
    pub total_records: Option<u64>,
    /// `title`, when present ("Projects", "Files", "Resources", …).
    pub title: Option<String>,
}

/// A cell value as text.
fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Parse a listing body. `url` only labels errors.
pub fn parse_listing(body: &[u8], url: &str) -> Result<Listing> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let start = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        XnatError::protocol(
            url,
            format!("listing is not JSON ({e}); it starts with {start:?}"),
        )
    })?;
    let set = value
        .get("ResultSet")
        .ok_or_else(|| XnatError::protocol(url, "listing has no \"ResultSet\""))?;
    let result = set
        .get("Result")
        .and_then(Value::as_array)
        .ok_or_else(|| XnatError::protocol(url, "listing has no \"ResultSet.Result\" array"))?;
    let mut rows = Vec::with_capacity(result.len());
    for (i, item) in result.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(XnatError::protocol(
                url,
                format!("listing row {i} is not an object: {item}"),
            ));
        };
        rows.push(Row(map
            .iter()
            .map(|(k, v)| (k.clone(), cell_text(v)))
            .collect()));
    }
    let total_records = set.get("totalRecords").and_then(|v| match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    });
    let title = set.get("title").map(cell_text);
    Ok(Listing {
        rows,
        total_records,
        title,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECTS: &str = r#"{"ResultSet":{"Result":[{"pi_firstname":"","secondary_ID":"Test","pi_lastname":"","name":"Test project","description":"","ID":"TEST","URI":"/data/projects/TEST"}],"totalRecords":"1","title":"Projects"}}"#;

    #[test]
    fn parses_real_shape() {
        let l = parse_listing(PROJECTS.as_bytes(), "u").unwrap();
        assert_eq!(l.rows.len(), 1);
        assert_eq!(l.total_records, Some(1));
        assert_eq!(l.title.as_deref(), Some("Projects"));
        assert_eq!(l.rows[0].text("ID"), "TEST");
        assert_eq!(l.rows[0].text("missing"), "");
        assert_eq!(l.rows[0].get("id"), Some("TEST"));
    }

    #[test]
    fn stringifies_non_string_cells() {
        let body = r#"{"ResultSet":{"Result":[{"a":3,"b":null,"c":true,"d":1.5,"e":[1]}]}}"#;
        let l = parse_listing(body.as_bytes(), "u").unwrap();
        let r = &l.rows[0];
        assert_eq!(
            (
                r.text("a"),
                r.text("b"),
                r.text("c"),
                r.text("d"),
                r.text("e")
            ),
            ("3", "", "true", "1.5", "[1]")
        );
        assert_eq!(l.total_records, None);
    }

    #[test]
    fn malformed_listings_are_protocol_errors() {
        for body in [
            "",
            "<html><body>Login</body></html>",
            "{\"ResultSet\":",
            "[]",
            "{\"ResultSet\":{}}",
            "{\"ResultSet\":{\"Result\":{}}}",
            "{\"ResultSet\":{\"Result\":[1]}}",
            "{\"ResultSet\":{\"Result\":[{\"a\":1},\"x\"]}}",
        ] {
            let e = parse_listing(body.as_bytes(), "http://x/data/projects").unwrap_err();
            assert!(matches!(e, XnatError::Protocol { .. }), "{body}: {e}");
            assert_eq!(e.errno(), libc::EIO);
        }
    }

    #[test]
    fn empty_result_is_fine() {
        let l = parse_listing(br#"{"ResultSet":{"Result":[],"totalRecords":"0"}}"#, "u").unwrap();
        assert!(l.rows.is_empty());
        assert_eq!(l.total_records, Some(0));
    }
}
