//! Parsing XNAT's listing envelope: `{"ResultSet":{"Result":[{…},…],"totalRecords":"N",…}}`.
//!
//! XNAT writes every cell as a string; numbers, booleans and nulls are accepted anyway and
//! turned into strings (null → ""), so typed rows (`model`) parse from one representation.
//! Anything else (not JSON, no `ResultSet.Result` array, a row that is not an object) is a
//! protocol error, never a panic.
//!
//! Rows are read straight from the body, with no JSON tree in between, and `parse_rows` turns
//! each into its typed form as soon as it is read: a listing of 200,000 files costs its body
//! and its typed rows, never a tree or every row's cells at once.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::error::{Result, XnatError};

/// One row of a listing: its columns and cells, in the server's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row(Vec<(String, String)>);

impl Row {
    /// A row from column/value pairs (handy for fakes and tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut row = Row(Vec::new());
        for (k, v) in pairs {
            row.set(k.into(), v.into());
        }
        row
    }

    /// Sets a column's cell (a repeated column keeps its last value, as a JSON object does).
    fn set(&mut self, column: String, cell: String) {
        match self.0.iter_mut().find(|(k, _)| *k == column) {
            Some(slot) => slot.1 = cell,
            None => self.0.push((column, cell)),
        }
    }

    /// The cell of a column, matched exactly first and then ignoring ASCII case (XNAT is not
    /// consistent about the case of `columns=` keys such as `xnat:imagescandata/id`).
    pub fn get(&self, column: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == column)
            .or_else(|| self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(column)))
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

    /// All columns and cells, in the server's order.
    pub fn cells(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
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

/// Parse a listing body. `url` only labels errors.
pub fn parse_listing(body: &[u8], url: &str) -> Result<Listing> {
    let (rows, total_records, title) = parse_rows(body, url, |row| row)?;
    Ok(Listing {
        rows,
        total_records,
        title,
    })
}

/// Parse a listing body, turning each row into a `T` as soon as it is read, so that only one
/// row is alive at a time: the rows, `totalRecords` and `title`.
pub fn parse_rows<T>(
    body: &[u8],
    url: &str,
    mut convert: impl FnMut(Row) -> T,
) -> Result<(Vec<T>, Option<u64>, Option<String>)> {
    let start = || String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
    // An object, not an array that serde could also take for a struct.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(XnatError::protocol(
            url,
            format!("listing is not a JSON object; it starts with {:?}", start()),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let set = EnvelopeSeed(&mut convert)
        .deserialize(&mut de)
        .and_then(|set| de.end().map(|()| set))
        .map_err(|e| {
            let what = if e.is_data() {
                "is not an XNAT listing"
            } else {
                "is not JSON"
            };
            XnatError::protocol(
                url,
                format!("listing {what} ({e}); it starts with {:?}", start()),
            )
        })?;
    let set = set.ok_or_else(|| XnatError::protocol(url, "listing has no \"ResultSet\""))?;
    let rows = set
        .rows
        .ok_or_else(|| XnatError::protocol(url, "listing has no \"ResultSet.Result\" array"))?;
    let total = set.total.and_then(|c| c.0.trim().parse().ok());
    Ok((rows, total, set.title.map(|c| c.0)))
}

/// What `ResultSet` held.
struct ResultSet<T> {
    rows: Option<Vec<T>>,
    total: Option<Cell>,
    title: Option<Cell>,
}

/// The outer object: its `ResultSet` (other keys are skipped).
struct EnvelopeSeed<'f, F>(&'f mut F);

impl<'de, T, F: FnMut(Row) -> T> DeserializeSeed<'de> for EnvelopeSeed<'_, F> {
    type Value = Option<ResultSet<T>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T, F: FnMut(Row) -> T> Visitor<'de> for EnvelopeSeed<'_, F> {
    type Value = Option<ResultSet<T>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with a ResultSet")
    }
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut set = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "ResultSet" {
                set = Some(map.next_value_seed(SetSeed(&mut *self.0))?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(set)
    }
}

/// `ResultSet`: `Result`, `totalRecords`, `title` (other keys are skipped).
struct SetSeed<'f, F>(&'f mut F);

impl<'de, T, F: FnMut(Row) -> T> DeserializeSeed<'de> for SetSeed<'_, F> {
    type Value = ResultSet<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T, F: FnMut(Row) -> T> Visitor<'de> for SetSeed<'_, F> {
    type Value = ResultSet<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a ResultSet object")
    }
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut set = ResultSet {
            rows: None,
            total: None,
            title: None,
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "Result" => set.rows = Some(map.next_value_seed(RowsSeed(&mut *self.0))?),
                "totalRecords" => set.total = Some(map.next_value()?),
                "title" => set.title = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(set)
    }
}

/// `Result`: an array of rows, each converted as it is read.
struct RowsSeed<'f, F>(&'f mut F);

impl<'de, T, F: FnMut(Row) -> T> DeserializeSeed<'de> for RowsSeed<'_, F> {
    type Value = Vec<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T, F: FnMut(Row) -> T> Visitor<'de> for RowsSeed<'_, F> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Vec<T>, A::Error> {
        // No capacity from a size hint: a hostile length must not reserve memory.
        let mut rows = Vec::new();
        while let Some(row) = seq.next_element::<Row>()? {
            rows.push((self.0)(row));
        }
        Ok(rows)
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Row, D::Error> {
        struct Cells;
        impl<'de> Visitor<'de> for Cells {
            type Value = Row;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a listing row (an object)")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Row, A::Error> {
                let mut row = Row(Vec::new());
                while let Some((column, cell)) = map.next_entry::<String, Cell>()? {
                    row.set(column, cell.0);
                }
                Ok(row)
            }
        }
        d.deserialize_map(Cells)
    }
}

/// A cell as text: strings as they are, numbers and booleans written out, null as "", and
/// anything nested as its JSON.
struct Cell(String);

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Cell, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = Cell;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a cell")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Cell, E> {
                Ok(Cell(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Cell, E> {
                Ok(Cell(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Cell, E> {
                Ok(Cell(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Cell, E> {
                Ok(Cell(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Cell, E> {
                Ok(Cell(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Cell, E> {
                Ok(Cell(
                    serde_json::Number::from_f64(v)
                        .map_or_else(|| v.to_string(), |n| n.to_string()),
                ))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Cell, E> {
                Ok(Cell(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> std::result::Result<Cell, E> {
                Ok(Cell(String::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<Cell, A::Error> {
                let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Cell(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Cell, A::Error> {
                let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Cell(v.to_string()))
            }
        }
        d.deserialize_any(Text)
    }
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
            "[{\"Result\":[]}]",
            "{\"ResultSet\":{\"Result\":[{\"a\":1}]}",
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
