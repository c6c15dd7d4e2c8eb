//! `?format=zip` downloads: the selected entries are written into a scratch
//! file (stored; `compression=deflate` to compress) with XNAT's layout
//! `{session}/scans/{id}-{type}/resources/{label}/files/{path}` (§2.9),
//! which is then streamed. Nothing is held whole in memory.

use super::error::{XnatError, XnatResult};
use super::file_body;
use super::files::Entry;
use crate::store::Store;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

pub async fn serve(store: Arc<Store>, entries: Vec<Entry>, deflate: bool) -> XnatResult<Response> {
    if entries.is_empty() {
        return Err(XnatError::not_found("No matching files"));
    }
    let name = entries[0]
        .zip_name
        .split('/')
        .next()
        .unwrap_or("download")
        .to_string();
    let (file, len) = tokio::task::spawn_blocking(move || build(&store, &entries, deflate))
        .await
        .map_err(|e| XnatError::internal(e.to_string()))??;
    let disposition = format!("attachment; filename=\"{}.zip\"", name.replace('"', "_"));
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/zip")
        .header(header::CONTENT_LENGTH, HeaderValue::from(len))
        .header(header::CONTENT_DISPOSITION, disposition)
        .body(file_body(file, 0, len))
        .expect("valid response"))
}

fn build(store: &Store, entries: &[Entry], deflate: bool) -> std::io::Result<(std::fs::File, u64)> {
    let scratch = store.scratch_file()?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::with_capacity(1 << 20, scratch));
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
    let out = zip.finish().map_err(std::io::Error::other)?;
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    let len = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(0))?;
    Ok((file, len))
}
