//! DICOM-sized files: a Part-10 file (128-byte preamble, `DICM`, file meta
//! group, a few MR attributes) whose pixel data pads it to the wanted size.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn element(out: &mut Vec<u8>, group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) {
    let mut v = value.to_vec();
    if v.len() % 2 == 1 {
        v.push(if vr == b"UI" { 0 } else { b' ' });
    }
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"UN" | b"SQ" | b"UT") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&v);
}

/// A file of exactly `size` bytes (or the minimal header if `size` is smaller).
pub fn file(size: u64, seed: u64, index: usize) -> Vec<u8> {
    let sop_class = b"1.2.840.10008.5.1.4.1.1.4"; // MR Image Storage
    let instance = format!("1.2.826.0.1.3680043.10.1234.{seed}.{index}");
    let mut meta = Vec::new();
    element(&mut meta, 0x0002, 0x0001, b"OB", &[0, 1]);
    element(&mut meta, 0x0002, 0x0002, b"UI", sop_class);
    element(&mut meta, 0x0002, 0x0003, b"UI", instance.as_bytes());
    element(&mut meta, 0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1"); // explicit VR little endian
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
    element(&mut out, 0x0008, 0x0016, b"UI", sop_class);
    element(&mut out, 0x0008, 0x0018, b"UI", instance.as_bytes());
    element(&mut out, 0x0008, 0x0060, b"CS", b"MR");
    element(&mut out, 0x0010, 0x0010, b"PN", b"SIM^SUBJECT");
    element(
        &mut out,
        0x0020,
        0x0013,
        b"IS",
        (index + 1).to_string().as_bytes(),
    );
    let header_len = out.len() as u64 + 12 + 3 * 10;
    let pixels = size.saturating_sub(header_len) & !1;
    let side = ((pixels / 2) as f64).sqrt() as u16;
    element(&mut out, 0x0028, 0x0010, b"US", &side.to_le_bytes());
    element(&mut out, 0x0028, 0x0011, b"US", &side.to_le_bytes());
    element(&mut out, 0x0028, 0x0100, b"US", &16u16.to_le_bytes());
    let mut data = vec![0u8; pixels as usize];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut data);
    element(&mut out, 0x7FE0, 0x0010, b"OW", &data);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn preamble_and_size() {
        let f = super::file(512 * 1024, 1, 0);
        assert_eq!(&f[128..132], b"DICM");
        assert_eq!(f.len(), 512 * 1024);
    }
}
