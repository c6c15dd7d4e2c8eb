//! Label rules and XNAT-style timestamps.

/// XNAT's rule for labels created over REST: `[A-Za-z0-9_-]+`.
pub fn is_valid_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The `insert_date` form XNAT prints in listings: `2024-01-31 12:34:56.789`.
pub fn xnat_timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(is_valid_label("Sub_01-a"));
        assert!(!is_valid_label(""));
        assert!(!is_valid_label("a b"));
        assert!(!is_valid_label("a.b"));
        assert!(!is_valid_label(".."));
    }

    #[test]
    fn timestamp_format() {
        assert_eq!(xnat_timestamp(0), "1970-01-01 00:00:00.000");
    }
}
