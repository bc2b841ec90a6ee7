//! A file's bytes seen in place: a range mapped read-only (`mmap`, `MAP_SHARED`) so that a
//! check can read bytes that were spliced into the file without copying them out. The pages
//! are the page cache's own, just written, so mapping and reading them does no I/O; the
//! caller bounds the range (a few MiB) so that one call is a short burst of CPU.
//!
//! [`Window`] keeps one mapping across the many pieces of a growing file (a form's spliced
//! middle): mapping and unmapping each piece cost a TLB shootdown per piece on every core
//! running the node's io-wq workers, and page-table work the window does once.

use std::io;
use std::os::fd::RawFd;

/// How much of a file one [`Window`] maps at a time (address space only: pages are mapped
/// as ranges are read).
const WINDOW_BYTES: u64 = 64 << 20;

/// A read-only view of a file being written, moved forward as the reads move: only bytes
/// already in the file may be read through it (a page past the file's end would fault).
pub struct Window {
    fd: RawFd,
    /// The mapping: its address, the file offset it starts at, its length (0: none yet).
    ptr: *mut libc::c_void,
    start: u64,
    len: usize,
}

impl Window {
    /// A window over `fd`, which must stay open (and not shrink under a read) while it lives.
    pub fn new(fd: RawFd) -> Window {
        Window {
            fd,
            ptr: std::ptr::null_mut(),
            start: 0,
            len: 0,
        }
    }

    /// Runs `f` over the bytes `from..to` of the file, which must all have been written.
    pub fn with_range<T>(
        &mut self,
        from: u64,
        to: u64,
        f: impl FnOnce(&[u8]) -> T,
    ) -> io::Result<T> {
        if to <= from {
            return Ok(f(&[]));
        }
        if from < self.start || to > self.start + self.len as u64 {
            self.unmap();
            let page = page_size();
            let start = from - from % page;
            let len = (to - start).max(WINDOW_BYTES);
            let len = usize::try_from(len).map_err(|_| io::Error::other("range too large"))?;
            let offset =
                libc::off_t::try_from(start).map_err(|_| io::Error::other("offset too large"))?;
            // SAFETY: a fresh read-only shared mapping of `len` bytes of `fd` at a page-aligned
            // offset; it may reach past the file's end, which is only an error when read.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    self.fd,
                    offset,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            (self.ptr, self.start, self.len) = (ptr, start, len);
        }
        let skip = (from - self.start) as usize;
        let n = (to - from) as usize;
        // The pages are mapped by the reads' own faults, each mapping the pages around it
        // (64 KiB by default), rather than by `MADV_POPULATE_READ` first, which walks the range
        // page by page and cost more (performance.md, "Looking ahead in the check").
        // SAFETY: `skip..skip + n` lies within the mapping, and the file holds those bytes (the
        // caller's promise), so reading them cannot fault past its end.
        Ok(f(unsafe {
            std::slice::from_raw_parts((self.ptr as *const u8).add(skip), n)
        }))
    }

    fn unmap(&mut self) {
        if self.len > 0 {
            // SAFETY: unmaps exactly the mapping this window made.
            unsafe { libc::munmap(self.ptr, self.len) };
            self.len = 0;
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        self.unmap();
    }
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
    fn a_window_sees_any_written_range_as_the_file_grows() {
        let path = std::env::temp_dir().join(format!("upgate-mapped-{}", std::process::id()));
        // Mapping needs a readable descriptor: the store opens its files read and write.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let bytes: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&bytes[..20_000]).unwrap();
        let mut window = super::Window::new(f.as_raw_fd());
        let read = |w: &mut super::Window, from: u64, to: u64| {
            let seen = w.with_range(from, to, |b| b.to_vec()).unwrap();
            assert_eq!(seen, &bytes[from as usize..to as usize], "{from}..{to}");
        };
        for (from, to) in [(0, 20_000), (4095, 4097), (5000, 12_345), (7, 7)] {
            read(&mut window, from, to);
        }
        // Bytes written after the window was mapped are seen through the same mapping.
        f.write_all(&bytes[20_000..]).unwrap();
        read(&mut window, 19_000, 40_000);
        // A range before the window's start maps again.
        let mut later = super::Window::new(f.as_raw_fd());
        read(&mut later, 30_000, 40_000);
        read(&mut later, 100, 9_000);
        drop((window, later));
        drop(f);
        std::fs::remove_file(&path).unwrap();
    }
}
