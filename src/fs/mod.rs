//! The filesystem core: namespace, metadata cache, read path. No FUSE types live here.

pub mod names;
