//! DICOM-sized files: a Part-10 file (128-byte preamble, `DICM`, file meta
//! group) holding one MR image slice with the attributes tools read from a
//! header (study, series and acquisition dates and times, series
//! description and number, patient, UIDs, geometry, display window), square 16-bit pixel
//! data, and Data Set Trailing Padding (FFFC,FFFC) that brings the file to
//! exactly the wanted size. pydicom, dcm2niix and pyxnat's
//! `Resource.scandate()` read them.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What the slices of one series share.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    /// `YYYY-MM-DD` (the session's date) or empty.
    pub date: &'a str,
    /// `HH:MM:SS` or empty.
    pub time: &'a str,
    pub patient: &'a str,
    pub series_description: &'a str,
    /// The scan ID (a number for the scans `populate` makes).
    pub series_number: &'a str,
    /// Unique per study (session) and per series (scan): they end the UIDs.
    pub study_key: u64,
    pub series_key: u64,
}

const UID_ROOT: &str = "1.2.826.0.1.3680043.10.1234";
const MR_IMAGE_STORAGE: &[u8] = b"1.2.840.10008.5.1.4.1.1.4";
const EXPLICIT_LITTLE: &[u8] = b"1.2.840.10008.1.2.1";

/// VRs whose length takes 4 bytes after 2 reserved ones (PS3.5 §7.1.2).
fn long_vr(vr: &[u8; 2]) -> bool {
    matches!(vr, b"OB" | b"OW" | b"OF" | b"SQ" | b"UT" | b"UN")
}

fn element(out: &mut Vec<u8>, group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) {
    let mut v = value.to_vec();
    if v.len() % 2 == 1 {
        v.push(if vr == b"UI" || vr == b"OB" { 0 } else { b' ' });
    }
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(vr);
    if long_vr(vr) {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&v);
}

fn us(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}

/// The header up to (not including) Rows and Columns.
fn header(series: &Series, index: usize) -> Vec<u8> {
    let date = series.date.replace('-', "");
    let time = series.time.replace(':', "");
    let study_uid = format!("{UID_ROOT}.1.{}", series.study_key);
    let series_uid = format!("{UID_ROOT}.2.{}.{}", series.study_key, series.series_key);
    let instance = format!(
        "{UID_ROOT}.3.{}.{}.{}",
        series.study_key,
        series.series_key,
        index + 1
    );
    let frame_uid = format!("{UID_ROOT}.4.{}", series.study_key);
    let mut meta = Vec::new();
    element(&mut meta, 0x0002, 0x0001, b"OB", &[0, 1]);
    element(&mut meta, 0x0002, 0x0002, b"UI", MR_IMAGE_STORAGE);
    element(&mut meta, 0x0002, 0x0003, b"UI", instance.as_bytes());
    element(&mut meta, 0x0002, 0x0010, b"UI", EXPLICIT_LITTLE);
    element(&mut meta, 0x0002, 0x0012, b"UI", UID_ROOT.as_bytes());
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    element(
        &mut out,
        0x0002,
        0x0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    );
    out.extend_from_slice(&meta);
    // The data set, in ascending tag order.
    element(&mut out, 0x0008, 0x0008, b"CS", b"ORIGINAL\\PRIMARY\\M\\ND");
    element(&mut out, 0x0008, 0x0016, b"UI", MR_IMAGE_STORAGE);
    element(&mut out, 0x0008, 0x0018, b"UI", instance.as_bytes());
    element(&mut out, 0x0008, 0x0020, b"DA", date.as_bytes());
    element(&mut out, 0x0008, 0x0021, b"DA", date.as_bytes());
    element(&mut out, 0x0008, 0x0022, b"DA", date.as_bytes());
    element(
        &mut out,
        0x0008,
        0x002A,
        b"DT",
        format!("{date}{time}").as_bytes(),
    );
    element(&mut out, 0x0008, 0x0030, b"TM", time.as_bytes());
    element(&mut out, 0x0008, 0x0031, b"TM", time.as_bytes());
    element(&mut out, 0x0008, 0x0032, b"TM", time.as_bytes());
    element(&mut out, 0x0008, 0x0060, b"CS", b"MR");
    element(&mut out, 0x0008, 0x0070, b"LO", b"xnat-sim");
    element(
        &mut out,
        0x0008,
        0x103E,
        b"LO",
        series.series_description.as_bytes(),
    );
    element(&mut out, 0x0010, 0x0010, b"PN", series.patient.as_bytes());
    element(&mut out, 0x0010, 0x0020, b"LO", series.patient.as_bytes());
    element(&mut out, 0x0018, 0x0050, b"DS", b"1");
    element(&mut out, 0x0018, 0x0080, b"DS", b"2000");
    element(&mut out, 0x0018, 0x0081, b"DS", b"30");
    element(&mut out, 0x0020, 0x000D, b"UI", study_uid.as_bytes());
    element(&mut out, 0x0020, 0x000E, b"UI", series_uid.as_bytes());
    element(
        &mut out,
        0x0020,
        0x0011,
        b"IS",
        series.series_number.as_bytes(),
    );
    element(
        &mut out,
        0x0020,
        0x0013,
        b"IS",
        (index + 1).to_string().as_bytes(),
    );
    let z = format!("0\\0\\{index}");
    element(&mut out, 0x0020, 0x0032, b"DS", z.as_bytes());
    element(&mut out, 0x0020, 0x0037, b"DS", b"1\\0\\0\\0\\1\\0");
    element(&mut out, 0x0020, 0x0052, b"UI", frame_uid.as_bytes());
    element(&mut out, 0x0028, 0x0002, b"US", &us(1));
    element(&mut out, 0x0028, 0x0004, b"CS", b"MONOCHROME2");
    out
}

/// Bytes of the elements after the header other than pixel values and padding:
/// Rows, Columns, PixelSpacing, BitsAllocated, BitsStored, HighBit,
/// PixelRepresentation, WindowCenter, WindowWidth, and the PixelData element's 12.
fn image_overhead() -> u64 {
    6 * 10 + (8 + 4) + 2 * (8 + 4) + 12
}

/// A file of exactly `size` bytes rounded down to even (DICOM elements have even
/// lengths), or the minimal header with a 1×1 image if `size` is smaller.
pub fn file(series: &Series, size: u64, seed: u64, index: usize) -> Vec<u8> {
    let mut out = header(series, index);
    let room = size.saturating_sub(out.len() as u64 + image_overhead());
    // The largest square 16-bit image that leaves either no padding or room for
    // the padding element's own 12 bytes.
    let mut side = (((room / 2) as f64).sqrt() as u64).clamp(1, u16::MAX as u64);
    while side > 1 {
        let rest = room.saturating_sub(side * side * 2);
        if rest == 0 || rest >= 12 {
            break;
        }
        side -= 1;
    }
    let side16 = side as u16;
    element(&mut out, 0x0028, 0x0010, b"US", &us(side16));
    element(&mut out, 0x0028, 0x0011, b"US", &us(side16));
    element(&mut out, 0x0028, 0x0030, b"DS", b"1\\1");
    element(&mut out, 0x0028, 0x0100, b"US", &us(16));
    element(&mut out, 0x0028, 0x0101, b"US", &us(12));
    element(&mut out, 0x0028, 0x0102, b"US", &us(11));
    element(&mut out, 0x0028, 0x0103, b"US", &us(0));
    // The display window of 12-bit data, as scanners write it.
    element(&mut out, 0x0028, 0x1050, b"DS", b"2048");
    element(&mut out, 0x0028, 0x1051, b"DS", b"4096");
    let mut pixels = vec![0u8; (side * side * 2) as usize];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut pixels);
    // 12 bits stored: keep the values in range.
    for hi in pixels.iter_mut().skip(1).step_by(2) {
        *hi &= 0x0F;
    }
    element(&mut out, 0x7FE0, 0x0010, b"OW", &pixels);
    let rest = size.saturating_sub(out.len() as u64);
    if rest >= 12 {
        element(
            &mut out,
            0xFFFC,
            0xFFFC,
            b"OB",
            &vec![0u8; ((rest - 12) & !1) as usize],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Series<'static> {
        Series {
            date: "2024-03-07",
            time: "10:11:12",
            patient: "SIM01_S001",
            series_description: "T1w_MPRAGE_sag_1mm",
            series_number: "2",
            study_key: 7,
            series_key: 2,
        }
    }

    #[test]
    fn preamble_and_exact_size() {
        for size in [512 * 1024, 4096, 4097, 1000, 10] {
            let f = file(&series(), size, 1, 0);
            assert_eq!(&f[128..132], b"DICM");
            if size >= 1000 {
                assert_eq!(f.len() as u64, size & !1, "size {size}");
            }
        }
    }

    #[test]
    fn carries_the_dates() {
        let f = file(&series(), 4096, 1, 0);
        let has = |needle: &[u8]| f.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"20240307101112"));
        assert!(has(b"T1w_MPRAGE_sag_1mm"));
    }
}
