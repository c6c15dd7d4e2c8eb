//! `xnatfs warm`'s side in the mount: a resource's files fetched in one request, the zip XNAT
//! makes of a resource (`…/resources/R/files?format=zip`), asked for with `setxattr
//! user.xnatfs.warm` on the resource's folder (or a folder in it).
//!
//! The zip is spooled to an unlinked scratch file, then each entry that is a file of the resource
//! not cached yet is checked against the catalog's MD5 and only then put in the shared cache
//! (or, without one, in this mount's block cache). A zip is worth it only when at least two
//! files, and at least half of the resource's, are missing; otherwise (and for anything the zip
//! did not bring) `xnatfs warm` reads the files one by one.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};

use super::Core;
use crate::fs::cache::{BlockCache, BlockKey};
use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::{Ino, Inode};
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
    /// Fetches the missing files of the resource folder `ino` is (or is in) in one zip of
    /// the resource; returns how many it cached (0 when a zip was not worth it).
    pub async fn warm_folder(&self, ino: Ino) -> FsResult<usize> {
        // The zip holds the whole resource: every missing file of it is taken from it, so
        // the other folders of the resource need no zip of their own.
        let mut inode = self.namespace.inode(ino)?;
        while matches!(inode.node, Node::Folder { .. }) {
            inode = self.namespace.inode(inode.parent)?;
        }
        // One warm of a resource at a time: a second one (another of its folders, asked at
        // the same time) finds the files the first cached, and fetches no zip.
        let turn = self
            .warming
            .lock()
            .unwrap()
            .entry(inode.ino)
            .or_default()
            .clone();
        let warmed = {
            let _turn = turn.lock().await;
            self.warm_resource(&inode).await
        };
        let mut warming = self.warming.lock().unwrap();
        if Arc::strong_count(&turn) == 2 {
            warming.remove(&inode.ino);
        }
        warmed
    }

    /// [`Core::warm_folder`] for the resource folder `inode`.
    async fn warm_resource(&self, inode: &Inode) -> FsResult<usize> {
        let (owner, resource) = match &inode.node {
            Node::Resource { owner, resource } => (owner.clone(), resource.clone()),
            _ => {
                return Err(FsError::new(
                    libc::EINVAL,
                    "xnatfs warm: a zip is made of a resource's folder only",
                ))
            }
        };
        let mut total = 0usize;
        let mut wanted = Vec::new();
        let mut folders = vec![inode.ino];
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
        let cached =
            tokio::task::spawn_blocking(move || unpack(scratch, wanted, shared.as_deref(), &cache))
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

/// The wanted file a zip entry is: its name is `…/resources/<label>/files/<path>`, and the
/// path is what follows a `/files/` (the first one that names a wanted file: a path may hold
/// a folder called `files` too). The label is not compared: the mount may know the resource
/// by its numeric ID, and a resource's zip holds that resource only.
fn wanted_path<'a>(entry: &'a str, wanted: &HashMap<String, Wanted>) -> Option<&'a str> {
    entry
        .match_indices("/files/")
        .map(|(at, marker)| &entry[at + marker.len()..])
        .find(|path| wanted.contains_key(*path))
}

/// Puts each wanted file the zip holds in the cache, checked first; returns how many.
fn unpack(
    zip_file: File,
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
        let Some(w) = wanted_path(&name, &by_path).and_then(|p| by_path.remove(p)) else {
            continue;
        };
        let md5 = w.file.md5();
        let kept = match shared {
            // A shared entry is put in place only if its MD5 is the catalog's.
            Some(shared) => {
                let mut entry = archive.by_index(i).map_err(io::Error::other)?;
                shared.put_with(&w.file.key(), md5, |writer| {
                    io::copy(&mut entry, writer).map(|_| ())
                })?
            }
            // Blocks are cached as they are cut: the bytes are checked in a first pass.
            None => {
                let mut entry = archive.by_index(i).map_err(io::Error::other)?;
                let mut hasher = Md5::new();
                let size = io::copy(&mut entry, &mut HashWriter(&mut hasher))?;
                drop(entry);
                let digest: [u8; 16] = hasher.finalize().into();
                let right = md5.is_none_or(|m| m == digest);
                if right {
                    let mut entry = archive.by_index(i).map_err(io::Error::other)?;
                    put_blocks(cache, &w.file, size, &mut entry)?;
                }
                right
            }
        };
        if kept {
            cached += 1;
        } else {
            tracing::warn!(path = %w.path, "a file in the resource zip differs from the catalog: not cached");
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
    fn zip_entries_map_to_the_wanted_paths_in_the_resource() {
        let wanted: HashMap<String, Wanted> = ["a/b.dcm", "files/x.txt"]
            .into_iter()
            .map(|p| {
                let file = FileVersion {
                    uri: format!("/f/{p}"),
                    size: 1,
                    version: String::new(),
                    digest: None,
                };
                let w = Wanted {
                    path: p.to_string(),
                    file,
                };
                (p.to_string(), w)
            })
            .collect();
        let name = |n| wanted_path(n, &wanted);
        assert_eq!(
            name("S1/scans/1-T1w/resources/DICOM/files/a/b.dcm"),
            Some("a/b.dcm")
        );
        // Known by its ID or its label alike; a folder named `files` inside is kept.
        assert_eq!(
            name("S1/resources/82/files/files/x.txt"),
            Some("files/x.txt")
        );
        assert_eq!(name("S1/resources/NIFTI/files/other.nii"), None);
    }
}
