//! The content type of a local object, kept in an extended attribute of its file
//! (`user.upgate.content_type`).
//!
//! - **Atomic with the bytes.** The attribute is set on the temporary file before the rename
//!   that makes it visible, so a download sees the new bytes and their type together, or
//!   neither; an overwrite without a type replaces the old file and its attribute with it.
//! - **No second file.** Nothing to keep in step with the object, to clean up after a crash,
//!   or to list past; the type survives a restart with the file.
//! - **Inline syscalls.** `fsetxattr` and `fgetxattr` on a descriptor this thread holds touch
//!   its in-memory inode, with no path walk (io_uring's `FSETXATTR`/`FGETXATTR` would be
//!   punted to its worker pool: a round trip for the same work); the path forms are for the
//!   listing thread and `head`, right after a `statx` of the same path.
//! - **Never fatal.** A filesystem without user extended attributes (`EOPNOTSUPP`: ramfs,
//!   tmpfs before Linux 6.6, some FUSE and network filesystems) is logged once at WARN and the
//!   object is stored without a type (downloads derive one from the extension); any other
//!   failure to set it is logged at WARN and handled the same way. A value read back is checked
//!   again by [`mime::declared`], so an attribute set by hand cannot put a control byte into a
//!   response head.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::mime;

/// The attribute's name.
const NAME: &CStr = c"user.upgate.content_type";

/// Sets `content_type` (already accepted by [`mime::declared`]) on the open file `fd`. Returns
/// whether it is kept; failures are logged, never returned.
pub fn set(fd: RawFd, content_type: &str, file: &Path) -> bool {
    debug_assert!(mime::declared(content_type) == Some(content_type));
    let value = content_type.as_bytes();
    // SAFETY: `fd` is an open descriptor borrowed for the call; name and value are valid for
    // the lengths given.
    let rc = unsafe { libc::fsetxattr(fd, NAME.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 {
        return true;
    }
    let e = io::Error::last_os_error();
    if unsupported(&e) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                dir = %file.parent().unwrap_or(file).display(),
                "the filesystem of data_dir refuses user extended attributes: declared content \
                 types are not stored, downloads derive them from the extension (logged once)"
            );
        }
    } else {
        tracing::warn!(error = %e, file = %file.display(),
            "the content type could not be stored with the file; downloads derive it from the extension");
    }
    false
}

/// The content type stored with the open file `fd`, if any (and valid).
pub fn get_fd(fd: RawFd) -> Option<String> {
    let mut buf = [0u8; mime::MAX_DECLARED + 1];
    // SAFETY: `fd` is an open descriptor borrowed for the call; `buf` is writable for its
    // length.
    let n = unsafe { libc::fgetxattr(fd, NAME.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    checked(n, &buf)
}

/// The content type stored with the file at `path`, if any (and valid). Blocking: a path walk.
pub fn get_path(path: &Path) -> Option<String> {
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = [0u8; mime::MAX_DECLARED + 1];
    // SAFETY: `path` is NUL-terminated; `buf` is writable for its length.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            NAME.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    checked(n, &buf)
}

/// The value a `*getxattr` call returned: absent (`ENODATA`), unsupported, longer than any
/// valid type (`ERANGE`, or a full buffer) and invalid values are all `None`.
fn checked(n: isize, buf: &[u8]) -> Option<String> {
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= mime::MAX_DECLARED)?;
    let value = std::str::from_utf8(&buf[..n]).ok()?;
    mime::declared(value).map(str::to_owned)
}

/// `EOPNOTSUPP` (on Linux the same number as `ENOTSUP`).
fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    fn file(name: &str) -> (std::path::PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!("upgate-xattr-{name}-{}", std::process::id()));
        let f = std::fs::File::create(&path).unwrap();
        (path, f)
    }

    #[test]
    fn a_type_set_on_the_descriptor_is_read_back_by_descriptor_and_path() {
        let (path, f) = file("roundtrip");
        assert_eq!(get_fd(f.as_raw_fd()), None, "nothing set yet");
        assert!(set(f.as_raw_fd(), "image/png; q=1", &path));
        assert_eq!(get_fd(f.as_raw_fd()).as_deref(), Some("image/png; q=1"));
        assert_eq!(get_path(&path).as_deref(), Some("image/png; q=1"));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_value_set_by_hand_that_is_no_valid_type_is_not_read() {
        let (path, f) = file("garbage");
        for bad in [
            &b"text/html\r\nSet-Cookie: a=b"[..],
            b"no type",
            &[b'a'; 300][..],
        ] {
            // SAFETY: as in `set`.
            let rc = unsafe {
                libc::fsetxattr(
                    f.as_raw_fd(),
                    NAME.as_ptr(),
                    bad.as_ptr().cast(),
                    bad.len(),
                    0,
                )
            };
            assert_eq!(rc, 0);
            assert_eq!(
                get_fd(f.as_raw_fd()),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(get_path(&path), None);
        }
        std::fs::remove_file(&path).unwrap();
    }
}
