//! Writing file bytes to a temp file while computing their size and MD5, so
//! an upload is streamed to disk once and never held in memory.

use md5::{Digest, Md5};
use std::io::{self, Write};
use std::path::Path;

pub struct BlobWriter {
    temp: tempfile::NamedTempFile,
    out: io::BufWriter<std::fs::File>,
    md5: Md5,
    size: u64,
}

pub struct WrittenBlob {
    pub temp: tempfile::NamedTempFile,
    pub size: u64,
    pub digest: String,
}

impl BlobWriter {
    pub fn new(dir: &Path) -> io::Result<BlobWriter> {
        let temp = tempfile::NamedTempFile::new_in(dir)?;
        let out = io::BufWriter::with_capacity(1 << 20, temp.reopen()?);
        Ok(BlobWriter {
            temp,
            out,
            md5: Md5::new(),
            size: 0,
        })
    }

    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.md5.update(chunk);
        self.size += chunk.len() as u64;
        self.out.write_all(chunk)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finish(mut self) -> io::Result<WrittenBlob> {
        self.out.flush()?;
        Ok(WrittenBlob {
            temp: self.temp,
            size: self.size,
            digest: hex(&self.md5.finalize()),
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
