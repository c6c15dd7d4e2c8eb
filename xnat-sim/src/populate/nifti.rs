//! NIfTI-1 volumes: a real 348-byte header (int16, 1 mm voxels, qform and
//! sform set), a 4-byte empty extension, smooth deterministic voxel data,
//! gzip-compressed as `.nii.gz`.

use flate2::write::GzEncoder;
use flate2::Compression;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::{self, Write};

const HEADER: usize = 348;
const VOX_OFFSET: usize = 352;

/// The header of `volumes` int16 volumes of `dim` voxels, `tr` seconds apart.
pub fn header_4d(dim: [u16; 3], volumes: u16, tr: f32) -> Vec<u8> {
    let mut h = vec![0u8; HEADER];
    let put_i16 =
        |h: &mut Vec<u8>, at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 =
        |h: &mut Vec<u8>, at: usize, v: f32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    h[0..4].copy_from_slice(&(HEADER as i32).to_le_bytes()); // sizeof_hdr
    h[38] = b'r'; // regular
    let dims = [
        if volumes > 1 { 4i16 } else { 3 },
        dim[0] as i16,
        dim[1] as i16,
        dim[2] as i16,
        volumes.max(1) as i16,
        1,
        1,
        1,
    ];
    for (i, d) in dims.iter().enumerate() {
        put_i16(&mut h, 40 + 2 * i, *d);
    }
    put_i16(&mut h, 70, 4); // datatype: INT16
    put_i16(&mut h, 72, 16); // bitpix
    let pixdim = [1.0f32, 1.0, 1.0, 1.0, tr, 0.0, 0.0, 0.0];
    for (i, p) in pixdim.iter().enumerate() {
        put_f32(&mut h, 76 + 4 * i, *p);
    }
    put_f32(&mut h, 108, VOX_OFFSET as f32);
    put_f32(&mut h, 112, 1.0); // scl_slope
    h[123] = 10; // xyzt_units: mm, s
    let descrip = b"xnat-sim synthetic volume";
    h[148..148 + descrip.len()].copy_from_slice(descrip);
    put_i16(&mut h, 252, 1); // qform_code: scanner
    put_i16(&mut h, 254, 1); // sform_code
    let (cx, cy, cz) = (
        -(dim[0] as f32) / 2.0,
        -(dim[1] as f32) / 2.0,
        -(dim[2] as f32) / 2.0,
    );
    put_f32(&mut h, 268, cx); // qoffset_x
    put_f32(&mut h, 272, cy);
    put_f32(&mut h, 276, cz);
    for (row, vals) in [
        [1.0, 0.0, 0.0, cx],
        [0.0, 1.0, 0.0, cy],
        [0.0, 0.0, 1.0, cz],
    ]
    .iter()
    .enumerate()
    {
        for (i, v) in vals.iter().enumerate() {
            put_f32(&mut h, 280 + 16 * row + 4 * i, *v);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    h
}

/// Dimensions whose int16 voxels take about `bytes` bytes (at least 8×8×1).
pub fn dims_for(bytes: u64) -> [u16; 3] {
    let voxels = (bytes / 2).max(64);
    let side = (voxels as f64).cbrt().clamp(8.0, 256.0) as u64;
    let nz = (voxels / (side * side)).clamp(1, 1024);
    [side as u16, side as u16, nz as u16]
}

/// A gzip-compressed volume of about `bytes` uncompressed voxel bytes.
pub fn volume(bytes: u64, seed: u64) -> io::Result<Vec<u8>> {
    series(dims_for(bytes), 1, 0.0, seed)
}

/// A gzip-compressed series of `volumes` volumes of `dim` voxels, `tr` seconds apart.
pub fn series(dim: [u16; 3], volumes: u16, tr: f32, seed: u64) -> io::Result<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&header_4d(dim, volumes, tr))?;
    gz.write_all(&[0u8; VOX_OFFSET - HEADER])?;
    let (nx, ny, nz) = (dim[0] as i32, dim[1] as i32, dim[2] as i32);
    let mut row = Vec::with_capacity(nx as usize * 2);
    for z in (0..nz).cycle().take(nz as usize * volumes.max(1) as usize) {
        for y in 0..ny {
            row.clear();
            for x in 0..nx {
                // a bright ellipsoid with noise: looks like a head, compresses like one
                let (dx, dy, dz) = (
                    (x - nx / 2) as f32 / (nx as f32 / 2.2),
                    (y - ny / 2) as f32 / (ny as f32 / 2.2),
                    (z - nz / 2) as f32 / (nz.max(2) as f32 / 2.2),
                );
                let inside = dx * dx + dy * dy + dz * dz < 1.0;
                let v: i16 = if inside { 600 } else { 0 } + rng.gen_range(0..40);
                row.extend_from_slice(&v.to_le_bytes());
            }
            gz.write_all(&row)?;
        }
    }
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    #[test]
    fn header_fields_and_volume_length() {
        let gz = volume(20_000, 3).unwrap();
        let mut raw = Vec::new();
        GzDecoder::new(&gz[..]).read_to_end(&mut raw).unwrap();
        assert_eq!(i32::from_le_bytes(raw[0..4].try_into().unwrap()), 348);
        assert_eq!(&raw[344..348], b"n+1\0");
        let d: Vec<i16> = (0..4)
            .map(|i| i16::from_le_bytes(raw[40 + 2 * i..42 + 2 * i].try_into().unwrap()))
            .collect();
        assert_eq!(d[0], 3);
        assert_eq!(
            raw.len(),
            352 + (d[1] as usize * d[2] as usize * d[3] as usize) * 2
        );
        assert_eq!(volume(20_000, 3).unwrap(), gz);
    }
}
