//! Single objects: `?format=json` as `{"items":[{"meta","data_fields","children"}]}`
//! (what xnatpy reads), `format=xml` (what pyxnat's `get()` asks for), and an
//! HTML page when no format is given (XNAT's default for single objects).
//! A resource answers with its catalog XML, as XNAT 1.7.5+ does.

use super::error::{XnatError, XnatResult};
use super::resolve::Node;
use crate::model::{xsi, Archive, Experiment, Resource, Scan};
use crate::text::xml_escape;
use serde_json::{json, Map, Value};

/// One object's type, fields and children, ready to print in any format.
struct Object {
    xsi_type: String,
    insert_date: String,
    fields: Vec<(String, String)>,
    /// (field path, children)
    children: Vec<(&'static str, Vec<Object>)>,
}

/// Body and content type of a single object in `format`.
pub fn render(
    a: &Archive,
    node: &Node,
    format: Option<&str>,
) -> XnatResult<(String, &'static str)> {
    if let Node::Resource(r) = node {
        let r = a
            .resources
            .get(r)
            .ok_or_else(|| XnatError::not_found("Unable to find resource"))?;
        return Ok(match format {
            Some("html") | None => (html(&resource(r)), "text/html"),
            _ => (catalog_xml(r), "text/xml"),
        });
    }
    let obj = object(a, node).ok_or_else(|| XnatError::not_found("Unknown object"))?;
    Ok(match format {
        Some("json") => (
            json!({ "items": [to_json(&obj)] }).to_string(),
            "application/json",
        ),
        Some("xml") => (to_xml_doc(&obj), "text/xml"),
        _ => (html(&obj), "text/html"),
    })
}

fn object(a: &Archive, node: &Node) -> Option<Object> {
    match node {
        Node::Project(p) => {
            let p = a.projects.get(p)?;
            let mut fields = vec![
                ("ID".into(), p.id.clone()),
                ("secondary_ID".into(), p.secondary_id.clone()),
                ("name".into(), p.name.clone()),
                ("description".into(), p.description.clone()),
            ];
            fields.extend(p.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
            Some(Object {
                xsi_type: "xnat:projectData".into(),
                insert_date: p.insert_date.clone(),
                fields,
                children: vec![("resources/resource", resources(a, &p.resources))],
            })
        }
        Node::Subject(s) => {
            let s = a.subjects.get(s)?;
            let mut fields = vec![
                ("ID".into(), s.id.clone()),
                ("project".into(), s.project.clone()),
                ("label".into(), s.label.clone()),
            ];
            fields.extend(s.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
            Some(Object {
                xsi_type: "xnat:subjectData".into(),
                insert_date: s.insert_date.clone(),
                fields,
                children: vec![("resources/resource", resources(a, &s.resources))],
            })
        }
        Node::Experiment(e) => Some(experiment(a, a.experiments.get(e)?)),
        Node::Scan { experiment, scan } => {
            let e = a.experiments.get(experiment)?;
            Some(scan_object(a, e, e.scans.iter().find(|s| &s.id == scan)?))
        }
        _ => None,
    }
}

fn experiment(a: &Archive, e: &Experiment) -> Object {
    let mut fields: Vec<(String, String)> = vec![
        ("ID".into(), e.id.clone()),
        ("project".into(), e.project.clone()),
        ("label".into(), e.label.clone()),
        ("subject_ID".into(), e.subject_id.clone()),
    ];
    if !e.date.is_empty() {
        fields.push(("date".into(), e.date.clone()));
    }
    let modality = xsi::modality(&e.xsi_type);
    if !modality.is_empty() {
        fields.push(("modality".into(), modality.into()));
    }
    if let Some(s) = &e.session_id {
        fields.push(("imageSession_ID".into(), s.clone()));
    }
    fields.extend(e.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
    let children = if e.is_assessor() {
        vec![
            ("out/file", resources(a, &e.resources)),
            ("in/file", resources(a, &e.in_resources)),
        ]
    } else {
        vec![
            (
                "scans/scan",
                e.scans.iter().map(|s| scan_object(a, e, s)).collect(),
            ),
            ("resources/resource", resources(a, &e.resources)),
        ]
    };
    Object {
        xsi_type: e.xsi_type.clone(),
        insert_date: e.insert_date.clone(),
        fields,
        children,
    }
}

fn scan_object(a: &Archive, e: &Experiment, s: &Scan) -> Object {
    let mut fields: Vec<(String, String)> = vec![
        ("ID".into(), s.id.clone()),
        ("type".into(), s.scan_type.clone()),
        ("series_description".into(), s.series_description.clone()),
        ("quality".into(), s.quality.clone()),
        ("note".into(), s.note.clone()),
        ("xnat_imagescandata_id".into(), s.uid.to_string()),
        ("image_session_ID".into(), e.id.clone()),
        ("project".into(), e.project.clone()),
    ];
    fields.retain(|(_, v)| !v.is_empty());
    fields.extend(s.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
    Object {
        xsi_type: s.xsi_type.clone(),
        insert_date: e.insert_date.clone(),
        fields,
        children: vec![("file", resources(a, &s.resources))],
    }
}

fn resources(a: &Archive, ids: &[u64]) -> Vec<Object> {
    ids.iter()
        .filter_map(|i| a.resources.get(i))
        .map(resource)
        .collect()
}

fn resource(r: &Resource) -> Object {
    Object {
        xsi_type: "xnat:resourceCatalog".into(),
        insert_date: r.insert_date.clone(),
        fields: vec![
            ("xnat_abstractresource_id".into(), r.id.to_string()),
            ("label".into(), r.label.clone()),
            ("format".into(), r.format.clone()),
            ("content".into(), r.content.clone()),
            ("file_count".into(), r.file_count().to_string()),
            ("file_size".into(), r.file_size().to_string()),
        ],
        children: Vec::new(),
    }
}

fn to_json(o: &Object) -> Value {
    let fields: Map<String, Value> = o
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let children: Vec<Value> = o
        .children
        .iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|(field, items)| {
            json!({ "field": field, "items": items.iter().map(to_json).collect::<Vec<_>>() })
        })
        .collect();
    json!({
        "meta": {
            "xsi:type": o.xsi_type,
            "isHistory": false,
            "start_date": o.insert_date,
        },
        "data_fields": fields,
        "children": children,
    })
}

const ATTRS: &[&str] = &["ID", "project", "label", "type", "xnat_abstractresource_id"];

fn to_xml(o: &Object, element: &str, root: bool, out: &mut String) {
    out.push('<');
    out.push_str(element);
    for (k, v) in o.fields.iter().filter(|(k, _)| ATTRS.contains(&k.as_str())) {
        out.push_str(&format!(" {k}=\"{}\"", xml_escape(v)));
    }
    if root {
        out.push_str(" xmlns:xnat=\"http://nrg.wustl.edu/xnat\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"");
    } else {
        out.push_str(&format!(" xsi:type=\"{}\"", xml_escape(&o.xsi_type)));
    }
    out.push('>');
    for (k, v) in o
        .fields
        .iter()
        .filter(|(k, _)| !ATTRS.contains(&k.as_str()))
    {
        out.push_str(&format!("<xnat:{k}>{}</xnat:{k}>", xml_escape(v)));
    }
    for (field, items) in o.children.iter().filter(|(_, i)| !i.is_empty()) {
        let (wrap, each) = field.split_once('/').unwrap_or(("", field));
        if !wrap.is_empty() {
            out.push_str(&format!("<xnat:{wrap}>"));
        }
        for item in items {
            to_xml(item, &format!("xnat:{each}"), false, out);
        }
        if !wrap.is_empty() {
            out.push_str(&format!("</xnat:{wrap}>"));
        }
    }
    out.push_str(&format!("</{element}>"));
}

fn to_xml_doc(o: &Object) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    to_xml(o, &xsi::element_name(&o.xsi_type), true, &mut out);
    out
}

fn catalog_xml(r: &Resource) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cat:Catalog ID=\"{}\" xmlns:cat=\"http://nrg.wustl.edu/catalog\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><cat:entries>",
        xml_escape(&r.label)
    );
    for f in &r.files {
        out.push_str(&format!(
            "<cat:entry URI=\"{p}\" ID=\"{p}\" name=\"{n}\" digest=\"{d}\" format=\"{fo}\" content=\"{c}\" xsi:type=\"cat:entry\"/>",
            p = xml_escape(&f.path),
            n = xml_escape(f.name()),
            d = f.digest,
            fo = xml_escape(&f.format),
            c = xml_escape(&f.content),
        ));
    }
    out.push_str("</cat:entries></cat:Catalog>\n");
    out
}

fn html(o: &Object) -> String {
    let mut out = format!(
        "<!DOCTYPE html><html><head><title>{t}</title></head><body><h1>{t}</h1><table>",
        t = xml_escape(&o.xsi_type)
    );
    for (k, v) in &o.fields {
        out.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>",
            xml_escape(k),
            xml_escape(v)
        ));
    }
    out.push_str("</table></body></html>");
    out
}
