//! The XML search document (`xdat:bundle`, of type `xdat:stored_search`)
//! clients post to `/data/search`: the root element, the search fields in
//! their sequence, and the where clause of criteria and nested AND/OR sets
//! (evidence: pyxnat `core/search.py` `build_search_document`).

/// One column asked for: `element_name` and `field_ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchField {
    pub element: String,
    pub field_id: String,
    pub sequence: i64,
}

/// One test: `schema_field`, `comparison_type`, `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Criterion {
    pub field: String,
    pub op: String,
    pub value: String,
}

/// A where clause: criteria and nested sets, joined by AND (also when `method` is
/// missing, as in pyxnat's single-criterion searches) or OR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub or: bool,
    pub criteria: Vec<Criterion>,
    pub sets: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub root: String,
    pub fields: Vec<SearchField>,
    pub clause: Option<Clause>,
}

fn child_text(node: roxmltree::Node, name: &str) -> String {
    node.children()
        .find(|c| c.tag_name().name() == name)
        .and_then(|c| c.text())
        .unwrap_or("")
        .trim()
        .to_string()
}

fn clause(node: roxmltree::Node) -> Clause {
    let or = node
        .attribute("method")
        .is_some_and(|m| m.eq_ignore_ascii_case("OR"));
    let mut c = Clause {
        or,
        criteria: Vec::new(),
        sets: Vec::new(),
    };
    for child in node.children().filter(|n| n.is_element()) {
        match child.tag_name().name() {
            "criteria" => c.criteria.push(Criterion {
                field: child_text(child, "schema_field"),
                op: child_text(child, "comparison_type"),
                value: child
                    .children()
                    .find(|x| x.tag_name().name() == "value")
                    .and_then(|x| x.text())
                    .unwrap_or("")
                    .to_string(),
            }),
            "child_set" => c.sets.push(clause(child)),
            _ => {}
        }
    }
    c
}

/// Parses a search document; an error says why it is not one.
pub fn parse(xml: &str) -> Result<Bundle, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let top = doc.root_element();
    if !matches!(top.tag_name().name(), "bundle" | "stored_search") {
        return Err(format!(
            "expected an xdat:stored_search document, got <{}>",
            top.tag_name().name()
        ));
    }
    let root = child_text(top, "root_element_name");
    if root.is_empty() {
        return Err("the search names no root_element_name".into());
    }
    let mut fields: Vec<SearchField> = top
        .children()
        .filter(|n| n.tag_name().name() == "search_field")
        .map(|n| SearchField {
            element: child_text(n, "element_name"),
            field_id: child_text(n, "field_ID"),
            sequence: child_text(n, "sequence").parse().unwrap_or(0),
        })
        .filter(|f| !f.element.is_empty() && !f.field_id.is_empty())
        .collect();
    fields.sort_by_key(|f| f.sequence);
    let clause = top
        .children()
        .find(|n| n.tag_name().name() == "search_where")
        .map(clause);
    Ok(Bundle {
        root,
        fields,
        clause,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyxnat_document() {
        let xml = r#"<xdat:bundle xmlns:xdat="http://nrg.wustl.edu/security" ID="@xnat:subjectData" brief-description="" description="" allow-diff-columns="0" secure="false"><xdat:root_element_name>xnat:subjectData</xdat:root_element_name><xdat:search_field><xdat:element_name>xnat:subjectData</xdat:element_name><xdat:field_ID>GENDER_TEXT</xdat:field_ID><xdat:sequence>1</xdat:sequence><xdat:type>string</xdat:type><xdat:header>x</xdat:header></xdat:search_field><xdat:search_field><xdat:element_name>xnat:subjectData</xdat:element_name><xdat:field_ID>SUBJECT_ID</xdat:field_ID><xdat:sequence>0</xdat:sequence><xdat:type>string</xdat:type><xdat:header>x</xdat:header></xdat:search_field><xdat:search_where method="AND"><xdat:criteria override_value_formatting="0"><xdat:schema_field>xnat:subjectData/PROJECT</xdat:schema_field><xdat:comparison_type>=</xdat:comparison_type><xdat:value>P1</xdat:value></xdat:criteria><xdat:child_set method="OR"><xdat:criteria override_value_formatting="0"><xdat:schema_field>xnat:subjectData/SUBJECT_LABEL</xdat:schema_field><xdat:comparison_type>LIKE</xdat:comparison_type><xdat:value>sub%</xdat:value></xdat:criteria></xdat:child_set></xdat:search_where></xdat:bundle>"#;
        let b = parse(xml).unwrap();
        assert_eq!(b.root, "xnat:subjectData");
        assert_eq!(b.fields[0].field_id, "SUBJECT_ID");
        assert_eq!(b.fields[1].field_id, "GENDER_TEXT");
        let c = b.clause.unwrap();
        assert!(!c.or);
        assert_eq!(c.criteria[0].value, "P1");
        assert!(c.sets[0].or);
        assert_eq!(c.sets[0].criteria[0].op, "LIKE");
        assert!(parse("<a/>").is_err());
        assert!(parse("not xml").is_err());
    }
}
