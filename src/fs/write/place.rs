//! Where a file written through the mount goes on the server, and which names it may have.
//!
//! Files only go inside a resource (or a folder in one); a name the user typed maps back
//! through the escaping of `names` to the server name, and XNAT's own reserved names are
//! refused. A staged file is a file node whose version names its stage.

use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::{Inode, InodeInfo};
use crate::fs::names;
use crate::fs::node::{file_uri, Node};
use crate::xnat::{FileAddr, Owner};

/// A folder files can go in: its resource and its path inside.
#[derive(Clone, Debug)]
pub(super) struct Place {
    pub owner: Owner,
    pub resource: String,
    /// The folder inside the resource (`""` for the resource itself).
    pub folder: String,
}

impl Place {
    /// The place a directory's files go; EPERM where XNAT keeps no files.
    pub fn for_files(dir: &Node) -> FsResult<Place> {
        Self::of(dir).ok_or_else(|| {
            FsError::new(
                libc::EPERM,
                "files can only go inside a resource folder (…/SCAN/RESOURCE/)",
            )
        })
    }

    /// The place a directory's files go, if files can go there.
    pub fn of(dir: &Node) -> Option<Place> {
        match dir {
            Node::Resource { owner, resource } => Some(Place {
                owner: owner.clone(),
                resource: resource.clone(),
                folder: String::new(),
            }),
            Node::Folder {
                owner,
                resource,
                path,
            } => Some(Place {
                owner: owner.clone(),
                resource: resource.clone(),
                folder: path.clone(),
            }),
            _ => None,
        }
    }

    /// The path inside the resource of the entry `raw` of this folder.
    pub fn path(&self, raw: &str) -> String {
        if self.folder.is_empty() {
            raw.to_string()
        } else {
            format!("{}/{raw}", self.folder)
        }
    }

    /// The folder node of the entry `raw` of this folder.
    pub fn folder_node(&self, raw: &str) -> Node {
        Node::Folder {
            owner: self.owner.clone(),
            resource: self.resource.clone(),
            path: self.path(raw),
        }
    }

    /// The folder node a file at `path` of resource `resource` of `owner` sits in.
    pub fn dir_of(owner: &Owner, resource: &str, path: &str) -> Node {
        match path.rsplit_once('/') {
            Some((folder, _)) => Node::Folder {
                owner: owner.clone(),
                resource: resource.to_string(),
                path: folder.to_string(),
            },
            None => Node::Resource {
                owner: owner.clone(),
                resource: resource.to_string(),
            },
        }
    }
}

/// A name a user typed, as the server will hold it.
pub(super) fn raw_name(name: &[u8]) -> FsResult<String> {
    let raw = names::decode_str(name)
        .ok_or_else(|| FsError::new(libc::EINVAL, "not a name XNAT can hold (not UTF-8)"))?;
    if raw.is_empty() || raw.contains('/') || raw.contains('\0') {
        return Err(FsError::new(
            libc::EINVAL,
            format!("not a valid name: {raw:?}"),
        ));
    }
    Ok(raw)
}

/// XNAT refuses to catalogue these names (reference §2.5).
pub(super) fn check_file_name(raw: &str) -> FsResult<()> {
    if raw.ends_with("_catalog.xml") {
        return Err(FsError::new(
            libc::EINVAL,
            format!(
                "XNAT cannot store a file named {raw:?}: names ending in _catalog.xml are its own"
            ),
        ));
    }
    Ok(())
}

/// Where a file is on the server; EISDIR for a folder.
pub(super) fn file_place(inode: &Inode) -> FsResult<FileAddr> {
    inode.node.file_addr().ok_or_else(FsError::is_dir)
}

/// The tree's node, and its attributes, of a file of `size` bytes held in stage `id`.
pub(super) fn staged_node(file: FileAddr, id: u64, size: u64) -> (Node, InodeInfo) {
    let uri = file_uri(&file);
    let node = Node::File {
        owner: file.owner,
        resource: file.resource,
        path: file.path,
        version: format!("stage:{id}"),
    };
    let info = InodeInfo {
        size,
        uri,
        ..InodeInfo::default()
    };
    (node, info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_places() {
        assert_eq!(raw_name(b"%2Ehidden").unwrap(), ".hidden");
        assert_eq!(raw_name(b"a%2Fb").unwrap_err().errno, libc::EINVAL);
        assert_eq!(raw_name(b"").unwrap_err().errno, libc::EINVAL);
        assert_eq!(raw_name(&[0xff]).unwrap_err().errno, libc::EINVAL);
        assert_eq!(
            check_file_name("x_catalog.xml").unwrap_err().errno,
            libc::EINVAL
        );
        let owner = Owner::Experiment {
            experiment: "E".into(),
        };
        let place = Place::for_files(&Node::Folder {
            owner: owner.clone(),
            resource: "R".into(),
            path: "a/b".into(),
        })
        .unwrap();
        assert_eq!(place.path("c.txt"), "a/b/c.txt");
        assert_eq!(
            Place::dir_of(&owner, "R", "a/b/c.txt"),
            Node::Folder {
                owner: owner.clone(),
                resource: "R".into(),
                path: "a/b".into(),
            }
        );
        assert_eq!(
            Place::dir_of(&owner, "R", "c.txt"),
            Node::Resource {
                owner: owner.clone(),
                resource: "R".into(),
            }
        );
        assert_eq!(
            Place::for_files(&Node::Root).unwrap_err().errno,
            libc::EPERM
        );
    }
}
