//! A file's bytes seen in place: a range mapped read-only (`mmap`, `MAP_SHARED`) so that a
//! check can read bytes that were spliced into the file without copying them out. The pages
//! are the page cache's own, just written, so mapping and reading them does no I/O; the
//! caller bounds the range (a few MiB) so that one call is a short burst of CPU.

use std::io;
use std::os::fd::RawFd;

/// Runs `f` over the bytes `from..to` of the open file `fd`.
pub fn with_range<T>(fd: RawFd, from: u64, to: u64, f: impl FnOnce(&[u8]) -> T) -> io::Result<T> {
    if to <= from {
        return Ok(f(&[]));
    }
    let page = page_size();
    let start = from - from % page;
    let len = usize::try_from(to - start).map_err(|_| io::Error::other("range too large"))?;
    let offset = libc::off_t::try_from(start).map_err(|_| io::Error::other("offset too large"))?;
    // SAFETY: a fresh read-only shared mapping of `len` bytes of `fd` at a page-aligned
    // offset; the kernel checks the descriptor and the range.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            // Every page at once: one call instead of a fault per few pages.
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            offset,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let skip = (from - start) as usize;
    // SAFETY: the mapping covers `len` bytes from `ptr`, all within the file (the caller wrote
    // them); it stays mapped until the munmap below, after `f` returns.
    let out = f(unsafe { std::slice::from_raw_parts((ptr as *const u8).add(skip), len - skip) });
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(ptr, len) };
    Ok(out)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn maps_any_range_of_a_file() {
        let path = std::env::temp_dir().join(format!("upgate-mapped-{}", std::process::id()));
        // Mapping needs a readable descriptor: the store opens its files read and write.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let bytes: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&bytes).unwrap();
        let fd = f.as_raw_fd();
        for (from, to) in [(0, 20_000), (4095, 4097), (5000, 12_345), (7, 7)] {
            let seen = super::with_range(fd, from, to, |b| b.to_vec()).unwrap();
            assert_eq!(seen, &bytes[from as usize..to as usize]);
        }
        drop(f);
        std::fs::remove_file(&path).unwrap();
    }
}
