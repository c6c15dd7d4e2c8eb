//! `?format=zip` (also `tar` and `tar.gz`, reference §4) downloads: the
//! selected entries are written into a scratch file (a zip stored;
//! `compression=deflate` to compress) with XNAT's layout
//! `{session}/scans/{id}-{type}/resources/{label}/files/{path}` (§2.9),
//! which is then streamed. Nothing is held whole in memory.

use super::error::{XnatError, XnatResult};
use super::file_body;
use super::files::Entry;
use crate::store::Store;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use std::io::{Seek, SeekFrom, Write};
use std::sync::Arc;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

/// The archive formats a files request can be downloaded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    Zip { deflate: bool },
    Tar,
    TarGz,
}

impl Packing {
    /// From `format=` (and `compression=` for zips); None for other formats.
    pub fn of(format: Option<&str>, compression: Option<&str>) -> Option<Packing> {
        match format? {
            "zip" => Some(Packing::Zip {
                deflate: compression == Some("deflate"),
            }),
            "tar" => Some(Packing::Tar),
            "tar.gz" | "tgz" => Some(Packing::TarGz),
            _ => None,
        }
    }

    fn extension_and_type(self) -> (&'static str, &'static str) {
        match self {
            Packing::Zip { .. } => ("zip", "application/zip"),
            Packing::Tar => ("tar", "application/x-tar"),
            Packing::TarGz => ("tar.gz", "application/x-gzip"),
        }
    }
}

pub async fn serve(
    store: Arc<Store>,
    entries: Vec<Entry>,
    packing: Packing,
) -> XnatResult<Response> {
    if entries.is_empty() {
        return Err(XnatError::not_found("No matching files"));
    }
    let name = entries[0]
        .zip_name
        .split('/')
        .next()
        .unwrap_or("download")
        .to_string();
    let (file, len) = tokio::task::spawn_blocking(move || build(&store, &entries, packing))
        .await
        .map_err(|e| XnatError::internal(e.to_string()))??;
    let (ext, content_type) = packing.extension_and_type();
    let disposition = format!("attachment; filename=\"{}.{ext}\"", name.replace('"', "_"));
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, HeaderValue::from(len))
        .header(header::CONTENT_DISPOSITION, disposition)
        .body(file_body(file, 0, len))
        .expect("valid response"))
}

fn build(
    store: &Store,
    entries: &[Entry],
    packing: Packing,
) -> std::io::Result<(std::fs::File, u64)> {
    let scratch = std::io::BufWriter::with_capacity(1 << 20, store.scratch_file()?);
    let out = match packing {
        Packing::Zip { deflate } => zip_into(store, entries, deflate, scratch)?,
        Packing::Tar => tar_into(store, entries, scratch)?,
        Packing::TarGz => {
            let gz = flate2::write::GzEncoder::new(scratch, flate2::Compression::fast());
            tar_into(store, entries, gz)?.finish()?
        }
    };
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    let len = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(0))?;
    Ok((file, len))
}

fn zip_into<W: Write + Seek>(
    store: &Store,
    entries: &[Entry],
    deflate: bool,
    out: W,
) -> std::io::Result<W> {
    let mut zip = zip::ZipWriter::new(out);
    let method = if deflate {
        CompressionMethod::Deflated
    } else {
        CompressionMethod::Stored
    };
    for e in entries {
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .large_file(e.file.size >= u32::MAX as u64);
        zip.start_file(e.zip_name.as_str(), options)
            .map_err(std::io::Error::other)?;
        let mut src = std::fs::File::open(store.blob_path(e.file.blob))?;
        std::io::copy(&mut src, &mut zip)?;
    }
    zip.finish().map_err(std::io::Error::other)
}

fn tar_into<W: Write>(store: &Store, entries: &[Entry], out: W) -> std::io::Result<W> {
    let mut tar = tar::Builder::new(out);
    for e in entries {
        let src = std::fs::File::open(store.blob_path(e.file.blob))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(e.file.size);
        header.set_mode(0o644);
        header.set_mtime((e.file.modified_ms / 1000).max(0) as u64);
        header.set_entry_type(tar::EntryType::Regular);
        // append_data writes GNU long-name records for paths over 100 bytes.
        tar.append_data(&mut header, e.zip_name.as_str(), src)?;
    }
    tar.into_inner()
}
