//! xnat-sim: an XNAT REST emulator.
