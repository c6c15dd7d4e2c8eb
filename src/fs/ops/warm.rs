//! `xnatfs warm`'s side in the mount: a resource's files fetched in one request, the zip XNAT
//! makes of a resource (`…/resources/R/files?format=zip`), asked for with `setxattr
//! user.xnatfs.warm` on the resource's folder (or a folder in it).
//!
//! The zip is spooled to an unlinked scratch file, then each entry that is a file of the folder
//! not cached yet is checked against the catalog's MD5 and only then put in the shared cache
//! (or, without one, in this mount's block cache). A zip is worth it only when at least two
//! files, and at least half of the folder's, are missing; otherwise (and for anything the zip
//! did not bring) `xnatfs warm` reads the files one by one.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};

use super::Core;
use crate::fs::cache::{BlockCache, BlockKey};
use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::Ino;
use crate::fs::node::Node;
use crate::fs::read::FileVersion;
use crate::fs::shared::SharedCache;

/// The attribute `xnatfs warm` sets on a folder to have its resource fetched as one zip.
pub const WARM_XATTR: &str = "user.xnatfs.warm";

/// A file of the folder that is not cached: its path in the resource and its version.
struct Wanted {
    path: String,
    file: FileVersion,
}

impl Core {
    /// Fetches the missing files under folder `ino` (a resource or a folder in one) in one zip
    /// of the resource; returns how many it cached (0 when a zip was not worth it).
    pub async fn warm_folder(&self, ino: Ino) -> FsResult<usize> {
        let inode = self.namespace.inode(ino)?;
        let (owner, resource) = match &inode.node {
            Node::Resource { owner, resource }
            | Node::Folder {
                owner, resource, ..
            } => (owner.clone(), resource.clone()),
            _ => {
                return Err(FsError::new(
                    libc::EINVAL,
                    "xnatfs warm: a zip is made of a resource's folder only",
                ))
            }
        };
        let mut total = 0usize;
        let mut wanted = Vec::new();
        let mut folders = vec![ino];
        while let Some(dir) = folders.pop() {
            let listing = self.namespace.list(dir).await?;
            for (_, child) in &listing.entries {
                let child = self.namespace.inode(*child)?;
                match &child.node {
                    Node::Folder { .. } => folders.push(child.ino),
                    Node::File { path, .. } => {
                        total += 1;
                        if !self.is_cached(child.ino)? {
                            if let Some(file) = super::reads::file_version(&child) {
                                wanted.push(Wanted {
                                    path: path.clone(),
                                    file,
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if wanted.len() < 2 || wanted.len() * 2 < total {
            return Ok(0);
        }
        let scratch_dir = match &self.reads.config().shared {
            Some(shared) => shared.root().join("tmp"),
            None => self
                .reads
                .cache()
                .scratch_dir()
                .ok_or_else(|| FsError::new(libc::ENOTSUP, "no cache folder to unpack in"))?,
        };
        let mut download = self.backend.resource_zip(&owner, &resource).await?;
        let scratch = scratch_file(&scratch_dir).map_err(|e| FsError::io("warm scratch", e))?;
        let mut writer = tokio::fs::File::from_std(
            scratch
                .try_clone()
                .map_err(|e| FsError::io("warm scratch", e))?,
        );
        while let Some(chunk) = download.body.next().await {
            let chunk = chunk?;
            tokio::io::AsyncWriteExt::write_all(&mut writer, &chunk)
                .await
                .map_err(|e| FsError::io("warm scratch", e))?;
        }
        // A tokio file finishes its last write in the background: wait for it.
        tokio::io::AsyncWriteExt::flush(&mut writer)
            .await
            .map_err(|e| FsError::io("warm scratch", e))?;
        drop(writer);
        let shared = self.reads.config().shared.clone();
        let cache = self.reads.cache().clone();
        let label = resource.clone();
        let cached = tokio::task::spawn_blocking(move || {
            unpack(scratch, &label, wanted, shared.as_deref(), &cache)
        })
        .await
        .map_err(|e| FsError::io("warm", io::Error::other(e)))?
        .map_err(|e| FsError::io("unpacking a resource zip", e))?;
        tracing::info!(resource, files = cached, "warmed a resource from its zip");
        Ok(cached)
    }
}

/// A new file in `dir` that is unlinked at once: it goes when it is closed, whatever happens.
fn scratch_file(dir: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(format!(
        "warm.{}.{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// The path of a zip entry in resource `label` (after `…/resources/<label>/files/`).
fn path_in_resource<'a>(entry: &'a str, label: &str) -> Option<&'a str> {
    let marker = format!("resources/{label}/files/");
    let at = entry.find(&marker)?;
    Some(&entry[at + marker.len()..])
}

/// Puts each wanted file the zip holds in the cache, checked first; returns how many.
fn unpack(
    zip_file: File,
    label: &str,
    wanted: Vec<Wanted>,
    shared: Option<&SharedCache>,
    cache: &BlockCache,
) -> io::Result<usize> {
    let mut archive = zip::ZipArchive::new(zip_file).map_err(io::Error::other)?;
    let mut by_path: HashMap<String, Wanted> =
        wanted.into_iter().map(|w| (w.path.clone(), w)).collect();
    let mut cached = 0;
    for i in 0..archive.len() {
        let name = archive
            .by_index_raw(i)
            .map_err(io::Error::other)?
            .name()
            .to_string();
        let Some(w) = path_in_resource(&name, label).and_then(|p| by_path.remove(p)) else {
            continue;
        };
        let md5 = w.file.md5();
        // First pass: the bytes must be the catalog's before any of them is cached.
        let mut entry = archive.by_index(i).map_err(io::Error::other)?;
        let mut hasher = Md5::new();
        let size = io::copy(&mut entry, &mut HashWriter(&mut hasher))?;
        drop(entry);
        let digest: [u8; 16] = hasher.finalize().into();
        if md5.is_some_and(|m| m != digest) {
            tracing::warn!(path = %w.path, "a file in the resource zip differs from the catalog: not cached");
            continue;
        }
        let mut entry = archive.by_index(i).map_err(io::Error::other)?;
        let kept = match shared {
            Some(shared) => shared.put_with(&w.file.key(), md5, |writer| {
                io::copy(&mut entry, writer).map(|_| ())
            })?,
            None => {
                put_blocks(cache, &w.file, size, &mut entry)?;
                true
            }
        };
        if kept {
            cached += 1;
        }
    }
    Ok(cached)
}

/// Cuts a file's bytes into the block cache's blocks, with its size record.
fn put_blocks(
    cache: &BlockCache,
    file: &FileVersion,
    size: u64,
    bytes: &mut impl Read,
) -> io::Result<()> {
    let key = file.key();
    let bs = cache.block_size() as usize;
    for index in 0..size.div_ceil(bs as u64) {
        let len = bs.min((size - index * bs as u64) as usize);
        let mut block = vec![0u8; len];
        bytes.read_exact(&mut block)?;
        cache.insert(BlockKey::new(key, index), Bytes::from(block));
        if index % 16 == 15 {
            // The writer's queue stays bounded: wait for the disk now and then.
            cache.flush();
        }
    }
    cache.put_size(key, size, None);
    cache.flush();
    Ok(())
}

struct HashWriter<'a>(&'a mut Md5);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_entries_map_to_paths_in_the_resource() {
        let label = "DICOM";
        assert_eq!(
            path_in_resource("S1/scans/1-T1w/resources/DICOM/files/a/b.dcm", label),
            Some("a/b.dcm")
        );
        assert_eq!(
            path_in_resource("S1/scans/1-T1w/resources/NIFTI/files/x.nii", label),
            None
        );
    }
}
