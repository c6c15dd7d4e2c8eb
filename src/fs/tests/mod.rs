//! Core tests without FUSE: the operations the adapter calls, over the fake XNAT.
