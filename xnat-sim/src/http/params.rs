//! Query-string parameters, looked up case-insensitively as XNAT does.

#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Params {
        Params(
            query
                .and_then(|q| serde_urlencoded::from_str(q).ok())
                .unwrap_or_default(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `key=true` (any case).
    pub fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    pub fn format(&self) -> Option<String> {
        self.get("format").map(|f| f.to_ascii_lowercase())
    }

    /// A field set by an xpath (`xnat:mrScanData/type=`) or its shortcut (`type=`).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| {
                k.eq_ignore_ascii_case(name)
                    || k.rsplit_once('/')
                        .is_some_and(|(_, f)| f.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v.as_str())
    }

    /// Every xpath-style field (`prefix:type/field=value`) as (field, value).
    pub fn xpath_fields(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let (head, field) = k.rsplit_once('/')?;
                head.contains(':').then(|| (field.to_string(), v.clone()))
            })
            .collect()
    }
}
