//! Loading and atomically saving `archive.json` (temp file + rename, so a
//! reader or a crash never sees half a file; no fsync: the sim does not
//! promise durability across power loss).

use crate::model::Archive;
use std::io::{self, Write};
use std::path::Path;

pub fn load(path: &Path) -> io::Result<Option<Archive>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn save(root: &Path, json: &[u8]) -> io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(root.join("tmp"))?;
    tmp.write_all(json)?;
    tmp.persist(root.join("archive.json"))
        .map_err(|e| e.error)?;
    Ok(())
}
