//! Writing a shaped listing as JSON (default), CSV, XML or HTML.

use super::Shaped;
use crate::text::{csv_field, xml_escape};
use serde_json::{json, Map, Value};

/// Body and content type for `format` (None = JSON, XNAT's listing default).
pub fn render(s: &Shaped, format: Option<&str>) -> (String, &'static str) {
    match format.unwrap_or("json") {
        "csv" => (csv(s), "text/csv"),
        "xml" => (xml(s), "text/xml"),
        "html" => (html(s), "text/html"),
        _ => (json(s).to_string(), "application/json"),
    }
}

/// The rows as JSON objects of string cells, keyed by column.
pub fn result_objects(s: &Shaped) -> Vec<Value> {
    s.rows
        .iter()
        .map(|r| {
            let m: Map<String, Value> = s
                .columns
                .iter()
                .zip(r)
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            Value::Object(m)
        })
        .collect()
}

fn json(s: &Shaped) -> Value {
    let result = result_objects(s);
    let mut rs = Map::new();
    if s.file_listing {
        rs.insert("Columns".into(), json!([{"key": "URI", "serverRoot": ""}]));
    }
    rs.insert("Result".into(), Value::Array(result));
    if let Some(n) = s.total_records {
        rs.insert("totalRecords".into(), Value::String(n.to_string()));
    }
    if !s.title.is_empty() {
        rs.insert("title".into(), Value::String(s.title.to_string()));
    }
    json!({ "ResultSet": rs })
}

/// Header line always, even for an empty table (pyxnat reads it with `next()`).
fn csv(s: &Shaped) -> String {
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = &String>| {
        cells.map(|c| csv_field(c)).collect::<Vec<_>>().join(",")
    };
    out.push_str(&line(&mut s.columns.iter()));
    out.push('\n');
    for r in &s.rows {
        out.push_str(&line(&mut r.iter()));
        out.push('\n');
    }
    out
}

fn xml(s: &Shaped) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total = s
        .total_records
        .map(|n| format!(" totalRecords=\"{n}\""))
        .unwrap_or_default();
    out.push_str(&format!(
        "<ResultSet Result=\"{}\" title=\"{}\"{total}>\n<results>\n<columns>",
        s.rows.len(),
        xml_escape(s.title)
    ));
    for c in &s.columns {
        out.push_str(&format!("<column>{}</column>", xml_escape(c)));
    }
    out.push_str("</columns>\n<rows>\n");
    for r in &s.rows {
        out.push_str("<row>");
        for c in r {
            out.push_str(&format!("<cell>{}</cell>", xml_escape(c)));
        }
        out.push_str("</row>\n");
    }
    out.push_str("</rows>\n</results>\n</ResultSet>\n");
    out
}

fn html(s: &Shaped) -> String {
    let mut out = format!(
        "<html><head><title>{}</title></head><body><table><tr>",
        xml_escape(s.title)
    );
    for c in &s.columns {
        out.push_str(&format!("<th>{}</th>", xml_escape(c)));
    }
    out.push_str("</tr>");
    for r in &s.rows {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&format!("<td>{}</td>", xml_escape(c)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shaped(rows: Vec<Vec<String>>) -> Shaped {
        Shaped {
            title: "Projects",
            columns: vec!["ID".into(), "name".into()],
            rows,
            total_records: Some(1),
            file_listing: false,
        }
    }

    #[test]
    fn json_envelope_has_string_cells() {
        let (b, ct) = render(&shaped(vec![vec!["P".into(), "a,b".into()]]), None);
        assert_eq!(ct, "application/json");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["ResultSet"]["totalRecords"], "1");
        assert_eq!(v["ResultSet"]["Result"][0]["name"], "a,b");
    }

    #[test]
    fn empty_csv_keeps_header() {
        let (b, _) = render(&shaped(vec![]), Some("csv"));
        assert_eq!(b, "ID,name\n");
    }
}
