//! File uploads (`PUT` ≡ `POST` on `…/resources/R/files/<path>`), as XNAT's
//! FileList does it (reference §2.5): raw body with `inbody=true` or a
//! supported Content-Type, multipart otherwise; 406/400/500 for the bodies
//! XNAT refuses; `{"duplicates":[…]}` instead of replacing without
//! `overwrite=true`; old versions kept in history; missing resources created;
//! `extract=true` unpacks zip, tar, tar.gz and tgz archives. Bytes are streamed to disk with their MD5.

use super::error::{XnatError, XnatResult};
use super::path::FilesSel;
use super::{tagged, AppState, Params, RequestKind};
use crate::model::{now_ms, CatalogFile, ResourceOwner};
use crate::store::{Store, WrittenBlob};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::sync::Arc;

/// Where uploaded files go.
#[derive(Debug, Clone)]
pub enum UploadTarget {
    Resource(u64),
    /// A resource label that does not exist yet: created on upload.
    NewResource {
        owner: ResourceOwner,
        label: String,
    },
}

/// Per-file catalog metadata from the query (or multipart form fields).
#[derive(Debug, Clone, Default)]
struct FileMeta {
    format: String,
    content: String,
    tags: Vec<String>,
    overwrite: bool,
    extract: bool,
}

impl FileMeta {
    fn from_params(p: &Params) -> FileMeta {
        FileMeta {
            format: p.get("format").unwrap_or("").to_string(),
            content: p.get("content").unwrap_or("").to_string(),
            tags: p
                .all("tags")
                .iter()
                .filter(|t| !t.is_empty())
                .map(|t| t.to_string())
                .collect(),
            overwrite: p.flag("overwrite"),
            extract: p.flag("extract"),
        }
    }
}

fn mime(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Content types XNAT accepts as a raw upload body.
fn is_upload_type(m: &str) -> bool {
    matches!(
        m,
        "application/octet-stream"
            | "application/zip"
            | "application/x-zip-compressed"
            | "application/x-gzip"
            | "application/gzip"
            | "application/x-tar"
            | "text/plain"
    ) || m.starts_with("image/")
}

fn check_name(path: &str) -> XnatResult<()> {
    if path.ends_with("_catalog.xml") {
        return Err(XnatError::bad_request(format!(
            "XNAT cannot catalog a file named {path}: names ending in _catalog.xml are reserved for catalogs"
        )));
    }
    Ok(())
}

pub async fn handle(
    state: AppState,
    target: UploadTarget,
    sel: FilesSel,
    params: Params,
    req: Request,
) -> Response {
    let result = upload(state, target, sel, params, req).await;
    tagged(
        RequestKind::Upload,
        match result {
            Ok(dups) if dups.is_empty() => {
                (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "").into_response()
            }
            Ok(dups) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html")],
                serde_json::json!({ "duplicates": dups }).to_string(),
            )
                .into_response(),
            Err(e) => {
                // A refused upload may leave its body unread on the connection: close it, and
                // say so, so that a client does not send its next request down a dead socket.
                let mut response = e.into_response();
                response.headers_mut().insert(
                    header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
                response
            }
        },
    )
}

/// Answer `err` after reading and dropping the request body (up to 64 MiB), as Tomcat swallows
/// a refused body: a server that closes the connection on an unread body makes the client see a
/// reset instead of the answer.
async fn refuse<T>(req: Request, err: XnatError) -> XnatResult<T> {
    swallow(req).await;
    Err(err)
}

/// Reads and drops a request body, up to 64 MiB.
pub async fn swallow(req: Request) {
    let mut body = req.into_body().into_data_stream();
    let mut swallowed = 0usize;
    while let Some(Ok(chunk)) = body.next().await {
        swallowed += chunk.len();
        if swallowed > 64 << 20 {
            break;
        }
    }
}

/// A refused write (`kind`) answered after its body is swallowed, closing the connection.
pub async fn refused(kind: RequestKind, req: Request, err: XnatError) -> Response {
    swallow(req).await;
    let mut response = err.into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    tagged(kind, response)
}

/// Returns the duplicate paths left unchanged.
async fn upload(
    state: AppState,
    target: UploadTarget,
    sel: FilesSel,
    params: Params,
    req: Request,
) -> XnatResult<Vec<String>> {
    let m = mime(req.headers());
    let inbody = params.flag("inbody");
    let multipart = m.as_deref() == Some("multipart/form-data");
    if multipart && inbody {
        return refuse(
            req,
            XnatError::new(
                StatusCode::NOT_ACCEPTABLE,
                "inbody=true cannot be combined with a multipart/form-data body",
            ),
        )
        .await;
    }
    if multipart {
        return upload_multipart(state, target, sel, params, req).await;
    }
    if !(inbody || m.as_deref().is_some_and(is_upload_type)) {
        return refuse(req, XnatError::bad_request(
            "The request has no usable body: try to PUT with the query-string parameter inbody=true or use multipart/form-data encoding",
        )).await;
    }
    let zip = matches!(m.as_deref(), Some("application/zip"));
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.unwrap_or(0) < 1 && !zip {
        return refuse(
            req,
            XnatError::internal("Upload failed: the request body is empty or of unknown length"),
        )
        .await;
    }
    if sel.path.is_empty() || sel.folder {
        return refuse(
            req,
            XnatError::bad_request("A file name is required after files/"),
        )
        .await;
    }
    if let Err(e) = check_name(&sel.path) {
        return refuse(req, e).await;
    }
    let meta = FileMeta::from_params(&params);
    let written = spool(&state.store, req.into_body().into_data_stream()).await?;
    store_upload(&state.store, &target, vec![(sel.path, written)], &meta).await
}

async fn upload_multipart(
    state: AppState,
    target: UploadTarget,
    sel: FilesSel,
    mut params: Params,
    req: Request,
) -> XnatResult<Vec<String>> {
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| XnatError::bad_request(e.body_text()))?;
    let mut files: Vec<(String, WrittenBlob)> = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| XnatError::bad_request(e.body_text()))?
    {
        let Some(file_name) = field.file_name().map(str::to_string) else {
            let name = field.name().unwrap_or("").to_string();
            let value = field
                .text()
                .await
                .map_err(|e| XnatError::bad_request(e.body_text()))?;
            params.0.push((name, value));
            continue;
        };
        let dest = if sel.path.is_empty() {
            file_name
        } else if sel.folder {
            format!("{}/{file_name}", sel.path)
        } else if files.is_empty() {
            sel.path.clone()
        } else {
            file_name
        };
        check_name(&dest)?;
        files.push((dest, spool(&state.store, field).await?));
    }
    if files.is_empty() {
        return Err(XnatError::bad_request("The multipart body holds no file"));
    }
    let meta = FileMeta::from_params(&params);
    store_upload(&state.store, &target, files, &meta).await
}

/// Streams a body to a temp file in the store, computing size and MD5 on a blocking thread.
async fn spool<S, E>(store: &Store, mut body: S) -> XnatResult<WrittenBlob>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut writer = store.blob_writer()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let task = tokio::task::spawn_blocking(move || {
        while let Some(chunk) = rx.blocking_recv() {
            writer.write(&chunk)?;
        }
        writer.finish()
    });
    let mut failed = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(b) => {
                if tx.send(b).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e.to_string());
                break;
            }
        }
    }
    drop(tx);
    let written = task
        .await
        .map_err(|e| XnatError::internal(e.to_string()))??;
    match failed {
        Some(e) => Err(XnatError::bad_request(format!("Upload interrupted: {e}"))),
        None => Ok(written),
    }
}

/// Unpacks archives when asked, then catalogues everything.
async fn store_upload(
    store: &Arc<Store>,
    target: &UploadTarget,
    files: Vec<(String, WrittenBlob)>,
    meta: &FileMeta,
) -> XnatResult<Vec<String>> {
    let files = if meta.extract {
        let store = store.clone();
        tokio::task::spawn_blocking(move || extract_archives(&store, files))
            .await
            .map_err(|e| XnatError::internal(e.to_string()))??
    } else {
        files
    };
    let store = store.clone();
    let target = target.clone();
    let meta = meta.clone();
    tokio::task::spawn_blocking(move || catalogue(&store, &target, files, &meta))
        .await
        .map_err(|e| XnatError::internal(e.to_string()))?
}

/// The archive kinds XNAT's `FileExtractor` unpacks, by the lower-cased file name's suffix
/// (tar, tar.gz, tgz, zip, zar, gz; anything else is stored as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packed {
    Zip,
    Tar,
    TarGz,
    /// One gzipped file: stored under its name without `.gz`.
    Gz,
}

impl Packed {
    fn of(name: &str) -> Option<Packed> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".zip") || lower.ends_with(".zar") {
            Some(Packed::Zip)
        } else if lower.ends_with(".tar") {
            Some(Packed::Tar)
        } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
            Some(Packed::TarGz)
        } else if lower.ends_with(".gz") {
            Some(Packed::Gz)
        } else {
            None
        }
    }
}

/// Replaces each archive by its entries, each under its own path in the archive from the
/// resource's root (the folders of the upload path are not kept, as in XNAT, where the
/// catalog's directory is the destination).
fn extract_archives(
    store: &Store,
    files: Vec<(String, WrittenBlob)>,
) -> XnatResult<Vec<(String, WrittenBlob)>> {
    let mut out = Vec::new();
    for (path, blob) in files {
        match Packed::of(&path) {
            None => out.push((path, blob)),
            Some(Packed::Zip) => unzip(store, &blob, &mut out)?,
            Some(Packed::Tar) => untar(store, blob.temp.reopen()?, &mut out)?,
            Some(Packed::TarGz) => untar(
                store,
                flate2::read::GzDecoder::new(blob.temp.reopen()?),
                &mut out,
            )?,
            Some(Packed::Gz) => {
                let file_name = path.rsplit('/').next().unwrap_or(&path);
                let name = &file_name[..file_name.len() - 3];
                let unpacked = copy_entry(
                    store,
                    "gzip file",
                    flate2::read::GzDecoder::new(blob.temp.reopen()?),
                )?;
                out.push((name.to_string(), unpacked));
            }
        }
    }
    Ok(out)
}

fn not_readable(kind: &str, e: impl std::fmt::Display) -> XnatError {
    XnatError::bad_request(format!("Not a readable {kind}: {e}"))
}

/// An entry's path in the resource: no leading `/` or `./`.
fn entry_path(name: &str) -> String {
    let mut p = name;
    loop {
        let trimmed = p.trim_start_matches('/');
        let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
        if trimmed == p {
            return p.to_string();
        }
        p = trimmed;
    }
}

/// A read error is the archive's fault (400); a write error the server's (500).
fn copy_entry(store: &Store, kind: &str, mut entry: impl std::io::Read) -> XnatResult<WrittenBlob> {
    let mut w = store.blob_writer()?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = entry.read(&mut buf).map_err(|e| not_readable(kind, e))?;
        if n == 0 {
            break;
        }
        w.write(&buf[..n])?;
    }
    Ok(w.finish()?)
}

fn unzip(
    store: &Store,
    blob: &WrittenBlob,
    out: &mut Vec<(String, WrittenBlob)>,
) -> XnatResult<()> {
    let mut zip = zip::ZipArchive::new(blob.temp.reopen()?).map_err(|e| not_readable("zip", e))?;
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|e| not_readable("zip", e))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry_path(entry.name());
        out.push((name, copy_entry(store, "zip", entry)?));
    }
    Ok(())
}

fn untar(
    store: &Store,
    reader: impl std::io::Read,
    out: &mut Vec<(String, WrittenBlob)>,
) -> XnatResult<()> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(|e| not_readable("tar", e))? {
        let entry = entry.map_err(|e| not_readable("tar", e))?;
        // XNAT's TarUtils writes every entry that is not a directory as a file, with the
        // entry's data: a symbolic or hard link becomes an empty file of its name.
        // (Header records such as pax and GNU long names are not entries of their own.)
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let name = entry_path(&String::from_utf8_lossy(&entry.path_bytes()));
        out.push((name, copy_entry(store, "tar", entry)?));
    }
    Ok(())
}

fn catalogue(
    store: &Store,
    target: &UploadTarget,
    files: Vec<(String, WrittenBlob)>,
    meta: &FileMeta,
) -> XnatResult<Vec<String>> {
    let result = store.write(|a| -> XnatResult<Vec<String>> {
        let rid = match target {
            UploadTarget::Resource(r) => *r,
            UploadTarget::NewResource { owner, label } => match a.resource_of(owner, label) {
                Some(r) => r.id,
                None => {
                    let id = a.add_resource(owner.clone(), label);
                    if let Some(r) = a.resources.get_mut(&id) {
                        r.format = meta.format.clone();
                        r.content = meta.content.clone();
                    }
                    id
                }
            },
        };
        let Some(resource) = a.resources.get(&rid) else {
            return Err(XnatError::not_found("Unable to find resource"));
        };
        let mut duplicates = Vec::new();
        let mut accepted = Vec::new();
        for (path, blob) in files {
            if resource.file(&path).is_some() && !meta.overwrite {
                duplicates.push(path);
            } else {
                accepted.push((path, blob));
            }
        }
        for (path, blob) in accepted {
            let number = a.next_blob();
            let (size, digest) = (blob.size, blob.digest.clone());
            store.commit_blob(blob, number)?;
            a.put_file(
                rid,
                CatalogFile {
                    path,
                    size,
                    digest,
                    blob: number,
                    format: meta.format.clone(),
                    content: meta.content.clone(),
                    tags: meta.tags.clone(),
                    modified_ms: now_ms(),
                },
            );
        }
        Ok(duplicates)
    })?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_types() {
        assert!(is_upload_type("application/octet-stream"));
        assert!(is_upload_type("image/png"));
        assert!(!is_upload_type("application/json"));
        assert!(check_name("x_catalog.xml").is_err());
        assert!(check_name("catalog.xml").is_ok());
    }

    #[test]
    fn archive_kinds_and_entry_paths() {
        assert_eq!(Packed::of("a.ZIP"), Some(Packed::Zip));
        assert_eq!(Packed::of("a.zar"), Some(Packed::Zip));
        assert_eq!(Packed::of("d/a.tar"), Some(Packed::Tar));
        assert_eq!(Packed::of("a.tar.gz"), Some(Packed::TarGz));
        assert_eq!(Packed::of("a.tgz"), Some(Packed::TarGz));
        assert_eq!(Packed::of("a.nii"), None);
        assert_eq!(Packed::of("t1.nii.gz"), Some(Packed::Gz));
        assert_eq!(entry_path("./sub/x.dcm"), "sub/x.dcm");
        assert_eq!(entry_path("/./x"), "x");
    }
}
