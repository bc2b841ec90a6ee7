//! The body, file → socket, without copying it through user space: `sendfile(2)` in a loop,
//! which moves pages from the page cache to the socket inside the kernel. The client's memory
//! therefore stays flat whatever the file's size (see `docs/client.md`, "Memory").
//!
//! Where the kernel refuses `sendfile` for this pair of descriptors (`EINVAL`/`ENOSYS` before any
//! byte went out), a `pread` + `write` loop with one 64 KiB buffer takes over; the same loop
//! sends the body over TLS, where the bytes must pass through user space to be encrypted.

use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// Most bytes per `sendfile` call: small enough for a progress bar to move, large enough that
/// the call count does not matter (256 calls per GiB).
const STEP: usize = 4 * 1024 * 1024;

/// Size of the one buffer of the fallback copy.
const COPY_BUF: usize = 64 * 1024;

/// Why the body did not go out whole.
#[derive(Debug)]
pub enum SendError {
    /// Reading the file failed, or it became shorter than its announced length.
    File(io::Error),
    /// Writing to the socket failed or stalled past its write timeout.
    Socket(io::Error),
}

/// Sends bytes `start..start + len` of `file` to `sock` (a whole body, or a resumable upload's
/// append), calling `progress` with each step's byte count. `sock` is blocking, with a write
/// timeout (a stalled peer surfaces as `Socket(WouldBlock)`).
pub fn send_range(
    sock: &TcpStream,
    file: &File,
    start: u64,
    len: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<(), SendError> {
    let end = start.checked_add(len).ok_or_else(|| {
        SendError::File(io::Error::new(
            io::ErrorKind::InvalidInput,
            "range past u64",
        ))
    })?;
    let mut offset = start;
    while offset < end {
        let count = (end - offset).min(STEP as u64) as usize;
        let mut off = offset as libc::off_t;
        // SAFETY: both descriptors are open for the duration of the call (borrowed), and `off`
        // is a valid, exclusively borrowed off_t.
        let n = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
        if n > 0 {
            offset += n as u64;
            progress(n as u64);
            continue;
        }
        if n == 0 {
            return Err(SendError::File(shrunk(offset, end)));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EINVAL | libc::ENOSYS) if offset == start => {
                let mut out = sock;
                return copy_range(&mut out, file, start, len, progress);
            }
            Some(libc::EIO) => return Err(SendError::File(err)),
            _ => return Err(SendError::Socket(err)),
        }
    }
    Ok(())
}

/// The copy: `pread` into one buffer, `write_all` to `out` (the socket of the fallback, or a
/// TLS session that encrypts on the way).
pub fn copy_range(
    out: &mut dyn Write,
    file: &File,
    start: u64,
    len: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<(), SendError> {
    let mut buf = vec![0u8; COPY_BUF];
    let end = start.checked_add(len).ok_or_else(|| {
        SendError::File(io::Error::new(
            io::ErrorKind::InvalidInput,
            "range past u64",
        ))
    })?;
    let mut offset = start;
    while offset < end {
        let want = (end - offset).min(COPY_BUF as u64) as usize;
        let n = match file.read_at(&mut buf[..want], offset) {
            Ok(0) => return Err(SendError::File(shrunk(offset, end))),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SendError::File(e)),
        };
        out.write_all(&buf[..n]).map_err(SendError::Socket)?;
        offset += n as u64;
        progress(n as u64);
    }
    Ok(())
}

fn shrunk(offset: u64, len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the file ended at byte {offset} of the {len} announced (it shrank while sending)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn temp_file(bytes: &[u8]) -> (File, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "upgate-sendfile-{}-{}",
            std::process::id(),
            bytes.len()
        ));
        std::fs::write(&path, bytes).unwrap();
        (File::open(&path).unwrap(), path)
    }

    type Sender = fn(&TcpStream, &File, u64, &mut dyn FnMut(u64)) -> Result<(), SendError>;

    fn send_file(
        sock: &TcpStream,
        file: &File,
        len: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), SendError> {
        send_range(sock, file, 0, len, progress)
    }

    fn copy_all(
        sock: &TcpStream,
        file: &File,
        len: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), SendError> {
        copy_range(&mut &*sock, file, 0, len, progress)
    }

    /// Sends `len` bytes of a file holding `content` and returns what the peer read.
    fn roundtrip(content: &[u8], len: u64) -> (Result<(), SendError>, Vec<u8>, u64) {
        roundtrip_with(send_file, content, len)
    }

    /// The same through `sender` (sendfile or the copy fallback).
    fn roundtrip_with(
        sender: Sender,
        content: &[u8],
        len: u64,
    ) -> (Result<(), SendError>, Vec<u8>, u64) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        });
        let sock = TcpStream::connect(addr).unwrap();
        let (file, path) = temp_file(content);
        let mut counted = 0;
        let result = sender(&sock, &file, len, &mut |n| counted += n);
        drop(sock);
        let got = reader.join().unwrap();
        let _ = std::fs::remove_file(path);
        (result, got, counted)
    }

    #[test]
    fn sends_every_byte_across_steps_and_counts_them() {
        let content: Vec<u8> = (0..(STEP + 12345)).map(|i| (i % 251) as u8).collect();
        let (result, got, counted) = roundtrip(&content, content.len() as u64);
        assert!(result.is_ok());
        assert_eq!(got, content);
        assert_eq!(counted, content.len() as u64);
    }

    #[test]
    fn a_file_shorter_than_announced_is_a_file_error() {
        let (result, got, _) = roundtrip(b"short", 10);
        assert!(
            matches!(result, Err(SendError::File(e)) if e.kind() == io::ErrorKind::UnexpectedEof)
        );
        assert_eq!(got, b"short");
    }

    #[test]
    fn a_range_sends_only_its_bytes_by_either_path() {
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let range = |sock: &TcpStream, file: &File, len: u64, p: &mut dyn FnMut(u64)| {
            send_range(sock, file, 1000, len, p)
        };
        let copied = |sock: &TcpStream, file: &File, len: u64, p: &mut dyn FnMut(u64)| {
            copy_range(&mut &*sock, file, 1000, len, p)
        };
        for sender in [range as Sender, copied as Sender] {
            let (result, got, counted) = roundtrip_with(sender, &content, 200_000);
            assert!(result.is_ok());
            assert_eq!(got, &content[1000..201_000]);
            assert_eq!(counted, 200_000);
        }
    }

    #[test]
    fn the_copy_fallback_sends_the_same_bytes() {
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8).collect();
        let (result, got, counted) = roundtrip_with(copy_all, &content, content.len() as u64);
        assert!(result.is_ok());
        assert_eq!(got, content);
        assert_eq!(counted, content.len() as u64);
    }
}
