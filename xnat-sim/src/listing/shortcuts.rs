//! XNAT's column shortcuts (`XMLPathShortcuts`): the short names listings
//! accept in `columns=` and as filters, each standing for an XML path, and
//! the names listing headers take (a path that equals a shortcut's is headed
//! by the shortcut). Read-only shortcuts are merged in, as the listing
//! resources ask for them. Where XNAT registers a name twice, the last path
//! is kept here too.

/// One table: (shortcut, XML path).
pub struct Shortcuts(pub &'static [(&'static str, &'static str)]);

impl Shortcuts {
    /// The path of shortcut `name`; XNAT matches the name exactly (`Label` is unknown).
    pub fn path_of(&self, name: &str) -> Option<&'static str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
    }

    /// The shortcut whose path is `path`, compared without case and without `[@…]`
    /// predicates (XNAT also registers the paths without them).
    pub fn name_of(&self, path: &str) -> Option<&'static str> {
        let want = normalise(path);
        self.0
            .iter()
            .find(|(_, p)| normalise(p) == want)
            .map(|(n, _)| *n)
    }
}

/// A path lower-cased, with `[…]` predicates removed:
/// `xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/gender` →
/// `xnat:subjectdata/demographics/gender`.
pub fn normalise(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0usize;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c.to_ascii_lowercase()),
            _ => {}
        }
    }
    out
}

pub const PROJECT: Shortcuts = Shortcuts(&[
    ("ID", "xnat:projectData/ID"),
    ("secondary_ID", "xnat:projectData/secondary_ID"),
    ("name", "xnat:projectData/name"),
    ("description", "xnat:projectData/description"),
    ("keywords", "xnat:projectData/keywords"),
    ("alias", "xnat:projectData/aliases/alias/alias"),
    ("pi_firstname", "xnat:projectData/PI/firstname"),
    ("pi_lastname", "xnat:projectData/PI/lastname"),
    ("note", "xnat:projectData/fields/field[name=note]/field"),
]);

const DEMOGRAPHICS: &str = "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]";

macro_rules! demographic {
    ($name:literal) => {
        (
            $name,
            concat!(
                "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/",
                $name
            ),
        )
    };
}

pub const SUBJECT: Shortcuts = Shortcuts(&[
    ("project", "xnat:subjectData/project"),
    ("label", "xnat:subjectData/label"),
    ("ID", "xnat:subjectData/ID"),
    ("group", "xnat:subjectData/group"),
    ("src", "xnat:subjectData/src"),
    ("pi_firstname", "xnat:subjectData/investigator/firstname"),
    ("pi_lastname", "xnat:subjectData/investigator/lastname"),
    demographic!("dob"),
    demographic!("yob"),
    demographic!("age"),
    demographic!("gender"),
    demographic!("handedness"),
    demographic!("ses"),
    demographic!("education"),
    demographic!("educationDesc"),
    demographic!("race"),
    demographic!("ethnicity"),
    demographic!("weight"),
    demographic!("height"),
    demographic!("gestational_age"),
    demographic!("post_menstrual_age"),
    demographic!("birth_weight"),
    ("insert_date", "xnat:subjectData/meta/insert_date"),
    ("insert_user", "xnat:subjectData/meta/insert_user/login"),
    ("last_modified", "xnat:subjectData/meta/last_modified"),
]);

pub const EXPERIMENT: Shortcuts = Shortcuts(&[
    ("ID", "xnat:experimentdata/id"),
    ("visit_id", "xnat:experimentdata/visit_id"),
    ("visit", "xnat:experimentdata/visit"),
    ("date", "xnat:experimentdata/date"),
    ("time", "xnat:experimentdata/time"),
    ("note", "xnat:experimentdata/note"),
    ("pi_firstname", "xnat:experimentdata/investigator/firstname"),
    ("pi_lastname", "xnat:experimentdata/investigator/lastname"),
    ("validation_method", "xnat:experimentdata/validation/method"),
    ("validation_status", "xnat:experimentdata/validation/status"),
    ("validation_date", "xnat:experimentdata/validation/date"),
    ("validation_notes", "xnat:experimentdata/validation/notes"),
    ("project", "xnat:experimentdata/project"),
    ("label", "xnat:experimentdata/label"),
    ("scanner", "xnat:imagesessiondata/scanner"),
    ("operator", "xnat:imagesessiondata/operator"),
    (
        "dcmAccessionNumber",
        "xnat:imagesessiondata/dcmaccessionnumber",
    ),
    ("dcmPatientId", "xnat:imagesessiondata/dcmpatientid"),
    ("dcmPatientName", "xnat:imagesessiondata/dcmpatientname"),
    ("session_type", "xnat:imagesessiondata/session_type"),
    ("modality", "xnat:imagesessiondata/modality"),
    ("UID", "xnat:imagesessiondata/uid"),
    ("studyInstanceUID", "xnat:imagesessiondata/uid"),
    ("coil", "xnat:mrsessiondata/coil"),
    ("fieldStrength", "xnat:mrsessiondata/fieldstrength"),
    ("marker", "xnat:mrsessiondata/marker"),
    ("stabilization", "xnat:petsessiondata/stabilization"),
    ("studyType", "xnat:petsessiondata/studytype"),
    ("patientID", "xnat:petsessiondata/patientid"),
    ("patientName", "xnat:petsessiondata/patientname"),
    ("scan_start_time", "xnat:petsessiondata/start_time_scan"),
    (
        "injection_start_time",
        "xnat:petsessiondata/start_time_injection",
    ),
    ("tracer_name", "xnat:petsessiondata/tracer/name"),
    ("tracer_startTime", "xnat:petsessiondata/tracer/starttime"),
    ("tracer_dose", "xnat:petsessiondata/tracer/dose"),
    ("tracer_sa", "xnat:petsessiondata/tracer/specificactivity"),
    ("tracer_totalmass", "xnat:petsessiondata/tracer/totalmass"),
    (
        "tracer_intermediate",
        "xnat:petsessiondata/tracer/intermediate",
    ),
    (
        "tracer_isotope",
        "xnat:petsessiondata/tracer/isotope/half-life",
    ),
    (
        "tracer_transmissions",
        "xnat:petsessiondata/tracer/transmissions",
    ),
    (
        "tracer_transmissions_start",
        "xnat:petsessiondata/tracer/transmissions_starttime",
    ),
    ("subject_ID", "xnat:subjectassessordata/subject_id"),
    ("subject_label", "xnat:subjectdata/label"),
    ("subject_project", "xnat:subjectdata/project"),
    ("session_ID", "xnat:imagesessiondata/id"),
    ("session_label", "xnat:imagesessiondata/label"),
    ("session_project", "xnat:imagesessiondata/project"),
    ("insert_date", "xnat:experimentData/meta/insert_date"),
    ("insert_user", "xnat:experimentData/meta/insert_user/login"),
    ("last_modified", "xnat:experimentData/meta/last_modified"),
    ("xsiType", "xnat:experimentData/extension_item/element_name"),
]);

pub const SCAN: Shortcuts = Shortcuts(&[
    ("ID", "xnat:imageScanData/ID"),
    ("type", "xnat:imageScanData/type"),
    ("UID", "xnat:imageScanData/UID"),
    ("note", "xnat:imageScanData/note"),
    ("quality", "xnat:imageScanData/quality"),
    ("condition", "xnat:imageScanData/condition"),
    (
        "series_description",
        "xnat:imageScanData/series_description",
    ),
    ("documentation", "xnat:imageScanData/documentation"),
    ("scanner", "xnat:imageScanData/scanner"),
    ("modality", "xnat:imageScanData/modality"),
    ("frames", "xnat:imageScanData/frames"),
    ("validation_method", "xnat:imageScanData/validation/method"),
    ("validation_status", "xnat:imageScanData/validation/status"),
    ("validation_date", "xnat:imageScanData/validation/date"),
    ("validation_notes", "xnat:imageScanData/validation/notes"),
    (
        "xnat_imagescandata_id",
        "xnat:imageScanData/xnat_imagescandata_id",
    ),
    ("scanTime", "xnat:imageScanData/startTime"),
    ("coil", "xnat:mrScanData/coil"),
    ("fieldStrength", "xnat:mrScanData/fieldStrength"),
    ("marker", "xnat:mrScanData/marker"),
    ("stabilization", "xnat:mrScanData/stabilization"),
    ("insert_date", "xnat:imageScanData/meta/insert_date"),
    ("insert_user", "xnat:imageScanData/meta/insert_user/login"),
    ("last_modified", "xnat:imageScanData/meta/last_modified"),
    ("xsiType", "xnat:imageScanData/extension_item/element_name"),
]);

/// The demographics element's path, for the subject records.
pub fn demographics_path() -> String {
    normalise(DEMOGRAPHICS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(EXPERIMENT.name_of("xnat:experimentData/date"), Some("date"));
        assert_eq!(
            EXPERIMENT.name_of("xnat:subjectAssessorData/subject_id"),
            Some("subject_ID")
        );
        assert_eq!(EXPERIMENT.name_of("xnat:imageScanData/ID"), None);
        assert_eq!(
            SUBJECT.name_of("xnat:subjectData/demographics/gender"),
            Some("gender")
        );
        assert_eq!(SUBJECT.path_of("Label"), None);
        assert_eq!(SCAN.path_of("frames"), Some("xnat:imageScanData/frames"));
        assert_eq!(
            normalise("xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/gender"),
            "xnat:subjectdata/demographics/gender"
        );
    }
}
