//! The small part of XNAT's data-type hierarchy the emulator needs: which
//! `xsiType`s are sessions, scans or assessors, their XML element names, and
//! `xsiType=` filter matching (`xnat:imageSessionData` matches MR, CT, …).

/// Session types with their XML element names and modality.
const SESSIONS: &[(&str, &str, &str)] = &[
    ("xnat:mrSessionData", "MRSession", "MR"),
    ("xnat:ctSessionData", "CTSession", "CT"),
    ("xnat:petSessionData", "PETSession", "PT"),
    ("xnat:petmrSessionData", "PETMRSession", "PETMR"),
    ("xnat:crSessionData", "CRSession", "CR"),
    ("xnat:usSessionData", "USSession", "US"),
    ("xnat:otherDicomSessionData", "OtherDicomSession", "OT"),
];

const SCANS: &[(&str, &str)] = &[
    ("xnat:mrScanData", "MRScan"),
    ("xnat:ctScanData", "CTScan"),
    ("xnat:petScanData", "PETScan"),
    ("xnat:crScanData", "CRScan"),
    ("xnat:usScanData", "USScan"),
    ("xnat:otherDicomScanData", "OtherDicomScan"),
];

const ASSESSORS: &[(&str, &str)] = &[
    ("xnat:qcAssessmentData", "QCAssessment"),
    ("xnat:qcManualAssessorData", "QCManualAssessment"),
    ("xnat:imageAssessorData", "ImageAssessor"),
    ("xnat:mrAssessorData", "MRAssessor"),
    ("xnat:petAssessorData", "PETAssessor"),
];

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

pub fn is_session_type(t: &str) -> bool {
    t.to_ascii_lowercase().ends_with("sessiondata")
}

pub fn is_assessor_type(t: &str) -> bool {
    let l = t.to_ascii_lowercase();
    ASSESSORS.iter().any(|(n, _)| eq(n, t)) || l.contains("assess")
}

pub fn is_scan_type(t: &str) -> bool {
    t.to_ascii_lowercase().ends_with("scandata")
}

/// Canonical spelling of a known type (XNAT accepts any case in `xsiType=`).
pub fn canonical(t: &str) -> String {
    SESSIONS
        .iter()
        .map(|(n, _, _)| *n)
        .chain(SCANS.iter().map(|(n, _)| *n))
        .chain(ASSESSORS.iter().map(|(n, _)| *n))
        .chain([
            "xnat:projectData",
            "xnat:subjectData",
            "xnat:resourceCatalog",
        ])
        .find(|n| eq(n, t))
        .map(str::to_string)
        .unwrap_or_else(|| t.to_string())
}

/// The modality a session type implies (`MR` for `xnat:mrSessionData`).
pub fn modality(t: &str) -> &'static str {
    SESSIONS
        .iter()
        .find(|(n, _, _)| eq(n, t))
        .map(|(_, _, m)| *m)
        .unwrap_or("")
}

/// The scan type that goes with a session type (`xnat:mrScanData` for MR).
pub fn scan_type_for_session(t: &str) -> &'static str {
    let m = modality(t);
    match m {
        "CT" => "xnat:ctScanData",
        "PT" | "PETMR" => "xnat:petScanData",
        "MR" => "xnat:mrScanData",
        _ => "xnat:otherDicomScanData",
    }
}

/// The XML element name of a type (`xnat:MRSession`).
pub fn element_name(t: &str) -> String {
    let known = SESSIONS
        .iter()
        .find(|(n, _, _)| eq(n, t))
        .map(|(_, e, _)| *e)
        .or_else(|| SCANS.iter().find(|(n, _)| eq(n, t)).map(|(_, e)| *e))
        .or_else(|| ASSESSORS.iter().find(|(n, _)| eq(n, t)).map(|(_, e)| *e));
    match known {
        Some(e) => format!("xnat:{e}"),
        None if eq(t, "xnat:projectData") => "xnat:Project".into(),
        None if eq(t, "xnat:subjectData") => "xnat:Subject".into(),
        None => t.to_string(),
    }
}

/// Whether an object of type `t` matches an `xsiType=` filter `filter`,
/// which may name a supertype or use `*` wildcards.
pub fn matches_filter(t: &str, filter: &str) -> bool {
    if crate::listing::glob_match(filter, t) {
        return true;
    }
    let f = filter.to_ascii_lowercase();
    match f.as_str() {
        "xnat:experimentdata" => true,
        "xnat:subjectassessordata" => is_session_type(t),
        "xnat:imagesessiondata" => is_session_type(t),
        "xnat:imageassessordata" | "xnat:derivedimageassessordata" => is_assessor_type(t),
        "xnat:imagescandata" => is_scan_type(t),
        _ => false,
    }
}

/// `t` and the types it extends, most specific first, lower-cased
/// (`xnat:mrsessiondata`, `xnat:imagesessiondata`, `xnat:subjectassessordata`,
/// `xnat:experimentdata`), after XNAT's schema.
pub fn ancestors(t: &str) -> Vec<String> {
    let l = t.to_ascii_lowercase();
    let chain: &[&str] = match l.as_str() {
        "xnat:experimentdata" => &[],
        "xnat:subjectassessordata" | "xnat:deriveddata" => &["xnat:experimentdata"],
        "xnat:imagesessiondata" => &["xnat:subjectassessordata", "xnat:experimentdata"],
        "xnat:imageassessordata" => &["xnat:deriveddata", "xnat:experimentdata"],
        "xnat:imagescandata" | "xnat:subjectdata" | "xnat:projectdata" => &[],
        _ if is_session_type(&l) => &[
            "xnat:imagesessiondata",
            "xnat:subjectassessordata",
            "xnat:experimentdata",
        ],
        _ if is_scan_type(&l) => &["xnat:imagescandata"],
        _ if is_assessor_type(&l) => &[
            "xnat:imageassessordata",
            "xnat:deriveddata",
            "xnat:experimentdata",
        ],
        _ => &[],
    };
    std::iter::once(l.clone())
        .chain(chain.iter().map(|s| s.to_string()))
        .collect()
}

/// Whether type `t` is `base` or extends it.
pub fn extends(t: &str, base: &str) -> bool {
    let base = base.to_ascii_lowercase();
    ancestors(t).contains(&base)
}

/// The types the search-elements endpoint reports: exactly those the served
/// XSD defines, so xnatpy finds a class for each.
pub fn all_elements() -> Vec<(&'static str, &'static str)> {
    vec![
        ("xnat:projectData", "Project"),
        ("xnat:subjectData", "Subject"),
        ("xnat:mrSessionData", "MRSession"),
        ("xnat:ctSessionData", "CTSession"),
        ("xnat:petSessionData", "PETSession"),
        ("xnat:mrScanData", "MRScan"),
        ("xnat:ctScanData", "CTScan"),
        ("xnat:petScanData", "PETScan"),
        ("xnat:qcAssessmentData", "QCAssessment"),
        ("xnat:imageAssessorData", "ImageAssessor"),
        ("xnat:resourceCatalog", "Resource"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supertype_filters() {
        assert!(matches_filter(
            "xnat:mrSessionData",
            "xnat:imageSessionData"
        ));
        assert!(matches_filter("xnat:mrSessionData", "XNAT:MRSESSIONDATA"));
        assert!(!matches_filter(
            "xnat:qcAssessmentData",
            "xnat:imageSessionData"
        ));
        assert!(matches_filter(
            "xnat:qcAssessmentData",
            "xnat:imageAssessorData"
        ));
        assert!(matches_filter("xnat:ctSessionData", "xnat:*Session*"));
    }

    #[test]
    fn hierarchy() {
        assert_eq!(
            ancestors("xnat:mrSessionData"),
            vec![
                "xnat:mrsessiondata",
                "xnat:imagesessiondata",
                "xnat:subjectassessordata",
                "xnat:experimentdata"
            ]
        );
        assert!(extends("xnat:mrScanData", "xnat:imageScanData"));
        assert!(extends("xnat:qcAssessmentData", "xnat:experimentData"));
        assert!(!extends(
            "xnat:qcAssessmentData",
            "xnat:subjectAssessorData"
        ));
        assert!(!extends("xnat:subjectData", "xnat:experimentData"));
    }

    #[test]
    fn names() {
        assert_eq!(element_name("xnat:mrSessionData"), "xnat:MRSession");
        assert_eq!(
            scan_type_for_session("xnat:ctSessionData"),
            "xnat:ctScanData"
        );
        assert_eq!(canonical("XNAT:MRSCANDATA"), "xnat:mrScanData");
    }
}
