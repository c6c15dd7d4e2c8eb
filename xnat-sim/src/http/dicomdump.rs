//! `GET /data/services/dicomdump?src=…` (also under `/REST`): the header of
//! one DICOM file of a session, a scan, or the file named, as XNAT's
//! `DicomDump` lists it: a row per element before the pixel data with
//! `tag1` `(gggg,eeee)`, `tag2` (the item's tag inside a sequence, else
//! empty), `vr`, `value` (at most 255 characters) and `desc` (the
//! dictionary's name, for the attributes this dictionary knows). `field=`
//! (keyword or 8 hex digits, repeatable) keeps only those elements. Files in
//! explicit or implicit VR little endian are read; others are a 400.

use super::error::{XnatError, XnatResult};
use super::files;
use super::path;
use super::resolve::{resolve, Node, Resolved};
use super::{fixed_listing, AppState, CurrentUser, Params};
use crate::listing::{Row, Table};
use crate::model::Archive;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;

const COLS: &[&str] = &["tag1", "tag2", "vr", "value", "desc"];

/// (group, element, keyword) of the attributes the dump names.
const DICTIONARY: &[(u16, u16, &str)] = &[
    (0x0002, 0x0000, "FileMetaInformationGroupLength"),
    (0x0002, 0x0001, "FileMetaInformationVersion"),
    (0x0002, 0x0002, "MediaStorageSOPClassUID"),
    (0x0002, 0x0003, "MediaStorageSOPInstanceUID"),
    (0x0002, 0x0010, "TransferSyntaxUID"),
    (0x0002, 0x0012, "ImplementationClassUID"),
    (0x0008, 0x0008, "ImageType"),
    (0x0008, 0x0016, "SOPClassUID"),
    (0x0008, 0x0018, "SOPInstanceUID"),
    (0x0008, 0x0020, "StudyDate"),
    (0x0008, 0x0021, "SeriesDate"),
    (0x0008, 0x0022, "AcquisitionDate"),
    (0x0008, 0x0023, "ContentDate"),
    (0x0008, 0x002A, "AcquisitionDateTime"),
    (0x0008, 0x0030, "StudyTime"),
    (0x0008, 0x0031, "SeriesTime"),
    (0x0008, 0x0032, "AcquisitionTime"),
    (0x0008, 0x0050, "AccessionNumber"),
    (0x0008, 0x0060, "Modality"),
    (0x0008, 0x0070, "Manufacturer"),
    (0x0008, 0x0080, "InstitutionName"),
    (0x0008, 0x1030, "StudyDescription"),
    (0x0008, 0x103E, "SeriesDescription"),
    (0x0008, 0x1090, "ManufacturerModelName"),
    (0x0010, 0x0010, "PatientName"),
    (0x0010, 0x0020, "PatientID"),
    (0x0010, 0x0030, "PatientBirthDate"),
    (0x0010, 0x0040, "PatientSex"),
    (0x0018, 0x0050, "SliceThickness"),
    (0x0018, 0x0080, "RepetitionTime"),
    (0x0018, 0x0081, "EchoTime"),
    (0x0018, 0x0087, "MagneticFieldStrength"),
    (0x0018, 0x1030, "ProtocolName"),
    (0x0020, 0x000D, "StudyInstanceUID"),
    (0x0020, 0x000E, "SeriesInstanceUID"),
    (0x0020, 0x0010, "StudyID"),
    (0x0020, 0x0011, "SeriesNumber"),
    (0x0020, 0x0012, "AcquisitionNumber"),
    (0x0020, 0x0013, "InstanceNumber"),
    (0x0020, 0x0032, "ImagePositionPatient"),
    (0x0020, 0x0037, "ImageOrientationPatient"),
    (0x0020, 0x0052, "FrameOfReferenceUID"),
    (0x0028, 0x0002, "SamplesPerPixel"),
    (0x0028, 0x0004, "PhotometricInterpretation"),
    (0x0028, 0x0010, "Rows"),
    (0x0028, 0x0011, "Columns"),
    (0x0028, 0x0030, "PixelSpacing"),
    (0x0028, 0x0100, "BitsAllocated"),
    (0x0028, 0x0101, "BitsStored"),
    (0x0028, 0x0102, "HighBit"),
    (0x0028, 0x0103, "PixelRepresentation"),
];

/// The dictionary's name of a keyword: words split before capitals (`EchoTime` → `Echo Time`).
fn description(group: u16, element: u16) -> String {
    let Some((_, _, keyword)) = DICTIONARY
        .iter()
        .find(|(g, e, _)| *g == group && *e == element)
    else {
        return String::new();
    };
    let mut out = String::new();
    let chars: Vec<char> = keyword.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        let prev_lower = i > 0 && chars[i - 1].is_lowercase();
        if i > 0 && c.is_uppercase() && (prev_lower || next_lower) {
            out.push(' ');
        }
        out.push(*c);
    }
    out
}

/// One element of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub group: u16,
    pub element: u16,
    pub vr: String,
    pub value: String,
}

/// VRs whose length takes 4 bytes after 2 reserved ones.
fn long_vr(vr: &[u8]) -> bool {
    matches!(
        vr,
        b"OB" | b"OW" | b"OF" | b"SQ" | b"UT" | b"UN" | b"OD" | b"OL" | b"UC" | b"UR"
    )
}

fn value_text(vr: &str, bytes: &[u8]) -> String {
    let le16 = |c: &[u8]| u16::from_le_bytes([c[0], c[1]]).to_string();
    let le32 = |c: &[u8]| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string();
    let text = match vr {
        "US" => bytes
            .chunks_exact(2)
            .map(le16)
            .collect::<Vec<_>>()
            .join("\\"),
        "UL" => bytes
            .chunks_exact(4)
            .map(le32)
            .collect::<Vec<_>>()
            .join("\\"),
        "OB" | "OW" | "UN" | "SQ" => String::new(),
        _ => String::from_utf8_lossy(bytes)
            .trim_end_matches(['\0', ' '])
            .to_string(),
    };
    text.chars().take(255).collect()
}

/// The elements before the pixel data of a Part-10 file (or a bare data set).
pub fn read_header(bytes: &[u8]) -> Result<Vec<Element>, String> {
    let mut pos = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        132
    } else {
        0
    };
    let mut out = Vec::new();
    let mut explicit = true;
    while pos + 8 <= bytes.len() {
        let group = u16::from_le_bytes([bytes[pos], bytes[pos + 1]]);
        let element = u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]);
        if (group, element) == (0x7FE0, 0x0010) || group == 0xFFFC {
            break;
        }
        // The meta group is always explicit; the data set follows the transfer syntax.
        let is_explicit = group == 0x0002 || explicit;
        let vr_bytes = &bytes[pos + 4..pos + 6];
        let (vr, len, header) = if is_explicit && vr_bytes.iter().all(u8::is_ascii_uppercase) {
            if long_vr(vr_bytes) {
                if pos + 12 > bytes.len() {
                    return Err("truncated element".into());
                }
                let len = u32::from_le_bytes([
                    bytes[pos + 8],
                    bytes[pos + 9],
                    bytes[pos + 10],
                    bytes[pos + 11],
                ]);
                (String::from_utf8_lossy(vr_bytes).into_owned(), len, 12)
            } else {
                let len = u16::from_le_bytes([bytes[pos + 6], bytes[pos + 7]]) as u32;
                (String::from_utf8_lossy(vr_bytes).into_owned(), len, 8)
            }
        } else {
            let len = u32::from_le_bytes([
                bytes[pos + 4],
                bytes[pos + 5],
                bytes[pos + 6],
                bytes[pos + 7],
            ]);
            ("UN".to_string(), len, 8)
        };
        if len == u32::MAX {
            return Err("undefined-length elements are not read here".into());
        }
        let start = pos + header;
        let end = start
            .checked_add(len as usize)
            .filter(|e| *e <= bytes.len())
            .ok_or("truncated element")?;
        let value = value_text(&vr, &bytes[start..end]);
        if (group, element) == (0x0002, 0x0010) {
            explicit = value != "1.2.840.10008.1.2";
            if !matches!(value.as_str(), "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1") {
                return Err(format!("transfer syntax {value} is not read here"));
            }
        }
        out.push(Element {
            group,
            element,
            vr,
            value,
        });
        pos = end;
    }
    Ok(out)
}

/// Whether an element is one `field=` names (keyword or 8 hex digits).
fn wanted(e: &Element, fields: &[&str]) -> bool {
    fields.is_empty()
        || fields.iter().any(|f| {
            let hex = format!("{:04X}{:04X}", e.group, e.element);
            f.eq_ignore_ascii_case(&hex)
                || DICTIONARY.iter().any(|(g, el, k)| {
                    *g == e.group && *el == e.element && k.eq_ignore_ascii_case(f)
                })
        })
}

/// The blob of the DICOM file `src` names or holds.
fn source_file(a: &Archive, user: &CurrentUser, src: &str) -> XnatResult<u64> {
    let rest = src
        .trim_start_matches('/')
        .strip_prefix("archive/")
        .ok_or_else(|| XnatError::bad_request(format!("Unsupported src {src}")))?;
    let parsed =
        path::parse(rest).ok_or_else(|| XnatError::bad_request(format!("Invalid src {src}")))?;
    let entries = match resolve(a, user, &parsed)? {
        Resolved::Object(node @ (Node::Experiment(_) | Node::Scan { .. })) => {
            let sel = path::FilesSel {
                path: String::new(),
                folder: true,
            };
            // A session's DICOM is in its scans.
            let node = match node {
                Node::Experiment(e) => Node::ScanSet {
                    scans: a
                        .experiments
                        .get(&e)
                        .map(|x| x.scans.iter().map(|s| s.id.clone()).collect())
                        .unwrap_or_default(),
                    experiment: e,
                },
                scan => scan,
            };
            files::select(a, &node, &sel, &Params::default())
        }
        Resolved::Files { parent, sel } => files::select(a, &parent, &sel, &Params::default()),
        _ => return Err(XnatError::bad_request(format!("No DICOM in {src}"))),
    };
    let dicom = |e: &&files::Entry| {
        a.resources
            .get(&e.resource)
            .is_some_and(|r| r.label.eq_ignore_ascii_case("DICOM") || r.format == "DICOM")
            || e.file.path.to_ascii_lowercase().ends_with(".dcm")
    };
    entries
        .iter()
        .find(dicom)
        .map(|e| e.file.blob)
        .ok_or_else(|| XnatError::not_found(format!("No DICOM file found in {src}")))
}

pub async fn dump(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref());
    let result = (|| -> XnatResult<Vec<Row>> {
        let src = params
            .get("src")
            .ok_or_else(|| XnatError::bad_request("Missing src"))?;
        let blob = state.store.read(|a| source_file(a, &user, src))?;
        let bytes = std::fs::read(state.store.blob_path(blob))?;
        let elements = read_header(&bytes).map_err(XnatError::bad_request)?;
        let fields = params.all("field");
        Ok(elements
            .iter()
            .filter(|e| wanted(e, &fields))
            .map(|e| {
                Row::new()
                    .with("tag1", format!("({:04X},{:04X})", e.group, e.element))
                    .with("tag2", "")
                    .with("vr", &e.vr)
                    .with("value", &e.value)
                    .with("desc", description(e.group, e.element))
            })
            .collect())
    })();
    match result {
        Ok(rows) => {
            let table = Table {
                title: "",
                defaults: COLS,
                file_listing: false,
                rows,
            };
            fixed_listing(table, params.format().as_deref())
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_populated_header() {
        let series = crate::populate::DicomSeries {
            date: "2024-03-07",
            time: "10:11:12",
            patient: "SIM01_S001",
            series_description: "T1w",
            series_number: "2",
            study_key: 7,
            series_key: 2,
        };
        let bytes = crate::populate::dicom_file(&series, 4096, 1, 0);
        let header = read_header(&bytes).unwrap();
        let get = |g: u16, e: u16| {
            header
                .iter()
                .find(|x| x.group == g && x.element == e)
                .unwrap()
        };
        assert_eq!(get(0x0008, 0x0022).value, "20240307");
        assert_eq!(get(0x0008, 0x103E).value, "T1w");
        assert_eq!(get(0x0028, 0x0100).value, "16");
        assert_eq!(description(0x0018, 0x0081), "Echo Time");
        assert_eq!(description(0x0008, 0x002A), "Acquisition Date Time");
        assert_eq!(description(0x0008, 0x0016), "SOP Class UID");
    }
}
