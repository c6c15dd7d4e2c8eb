//! Extended attributes of a path itself (never of a link's target): how `xnatfs status` and
//! `xnatfs warm` talk to a mount (its `user.xnatfs.*` attributes).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The largest value read.
const MAX_VALUE: usize = 64 << 10;

fn c_strings(path: &Path, name: &str) -> io::Result<(CString, CString)> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    let name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name with a NUL byte"))?;
    Ok((path, name))
}

/// The value of attribute `name` of `path`.
pub fn get(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    let (path, name) = c_strings(path, name)?;
    let mut buf = vec![0u8; MAX_VALUE];
    // SAFETY: valid C strings and a buffer of the length given.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Sets attribute `name` of `path` to `value`.
pub fn set(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let (path, name) = c_strings(path, name)?;
    // SAFETY: valid C strings and a value of the length given.
    let r = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
