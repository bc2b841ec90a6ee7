//! `multipart/form-data` parsing throughput, as the node feeds it: one file part whose body
//! arrives in 64 KiB reads, each read offered to `MultipartParser::parse` until `NeedData`,
//! body bytes taken as ranges of the read (no copy).
//!
//! - `file_1mib_64k_reads`: a whole form (a text field, a 1 MiB file part, the close delimiter).
//! - `file_100mib_64k_reads`: the same with a 100 MiB file part, made by offering one 64 KiB
//!   read of file bytes 1600 times (the parser cannot tell), so no 100 MiB buffer is needed.
//!
//! - `in_place_check_1mib/{binary,letters}`: `MultipartParser::find_delimiter` over 1 MiB of
//!   file bytes, as the node checks a spliced piece of a large file part in place: pseudo-random
//!   bytes (a CR every 256 bytes, as in compressed files) and lowercase letters (no CR). With
//!   `--features check`, also `…_by_cr`: the same answer by trying every CR (the search before
//!   the pair search, kept as its oracle), for the before and after.
//!
//! - `in_place_check_page_cache/{just_written,again}`: the same search over 1 MiB pieces of those
//!   random bytes as the node meets them: each piece written into a file (`pwrite`, into the
//!   page cache, as the splice's copy does) and searched through the node's mapping
//!   (`storage::mapped::Window`, its pages mapped by the search's faults) right after
//!   (`just_written`), or searched a second time (`again`: the bytes in cache, the pages mapped).
//!   Only the search is timed; the gap between the two is what reading bytes the kernel just
//!   copied costs (performance.md, "Looking ahead in the check").
//!
//! The file bytes are pseudo-random, so CRs and `--` appear at their natural rate; criterion
//! reports bytes/s of the whole form. Run:
//! `cargo bench --bench multipart -- --warm-up-time 1 --measurement-time 5`
//! (`cargo bench --features check --bench multipart -- in_place` for the check's before/after).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use upgate::http::{MultipartEvent, MultipartParser};

const READ: usize = 64 * 1024;
const MIB: usize = 1 << 20;
const BOUNDARY: &[u8] = b"----WebKitFormBoundaryePkpFF7tjBAqx29L";

fn head() -> Vec<u8> {
    let mut head = Vec::new();
    for line in [
        &b"------WebKitFormBoundaryePkpFF7tjBAqx29L\r\n"[..],
        b"Content-Disposition: form-data; name=\"key\"\r\n\r\n",
        b"uploads/${filename}\r\n",
        b"------WebKitFormBoundaryePkpFF7tjBAqx29L\r\n",
        b"Content-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n",
        b"Content-Type: application/octet-stream\r\n\r\n",
    ] {
        head.extend_from_slice(line);
    }
    head
}

const TAIL: &[u8] = b"\r\n------WebKitFormBoundaryePkpFF7tjBAqx29L--\r\n";

/// `n` pseudo-random bytes (xorshift).
fn file_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Offers `read` to the parser until it needs more; returns the body bytes it handed out.
fn feed(parser: &mut MultipartParser, read: &[u8]) -> usize {
    let mut rest = read;
    let mut data = 0;
    loop {
        let (used, event) = parser.parse(rest).expect("valid form");
        match event {
            MultipartEvent::Data(range) => data += black_box(&rest[range]).len(),
            MultipartEvent::Held => data += parser.held().len(),
            MultipartEvent::NeedData => return data,
            _ => {}
        }
        rest = &rest[used..];
    }
}

/// The form: `head`, then every read of `reads` (in 64 KiB pieces), then the tail.
fn parse_form(head: &[u8], reads: impl Iterator<Item = &'static [u8]>) -> usize {
    let mut parser = MultipartParser::new(BOUNDARY);
    let mut data = feed(&mut parser, head);
    for read in reads {
        data += feed(&mut parser, read);
    }
    data += feed(&mut parser, TAIL);
    parser.finish().expect("complete form");
    data
}

fn multipart(c: &mut Criterion) {
    let head = head();
    let file: &'static [u8] = Vec::leak(file_bytes(MIB));
    let one_read: &'static [u8] = &file[..READ];
    let field = b"uploads/${filename}".len();

    let mut g = c.benchmark_group("multipart");
    g.throughput(Throughput::Bytes((head.len() + MIB + TAIL.len()) as u64));
    g.bench_function("file_1mib_64k_reads", |b| {
        b.iter(|| assert_eq!(parse_form(&head, file.chunks(READ)), field + MIB))
    });

    const READS: usize = 100 * MIB / READ;
    g.throughput(Throughput::Bytes(
        (head.len() + READS * READ + TAIL.len()) as u64,
    ));
    g.sample_size(10);
    g.bench_function("file_100mib_64k_reads", |b| {
        b.iter(|| {
            let reads = std::iter::repeat_n(one_read, READS);
            assert_eq!(parse_form(&head, reads), field + READS * READ)
        })
    });
    g.finish();

    let parser = MultipartParser::new(BOUNDARY);
    let letters: Vec<u8> = (0..MIB).map(|i| b'a' + (i % 26) as u8).collect();
    let mut g = c.benchmark_group("in_place_check_1mib");
    g.throughput(Throughput::Bytes(MIB as u64));
    for (name, bytes) in [("binary", file), ("letters", &letters[..])] {
        g.bench_function(name, |b| {
            b.iter(|| assert_eq!(parser.find_delimiter(black_box(bytes)), Ok(None)))
        });
        #[cfg(feature = "check")]
        g.bench_function(format!("{name}_by_cr"), |b| {
            b.iter(|| assert_eq!(parser.find_delimiter_by_cr(black_box(bytes)), Ok(None)))
        });
    }
    g.finish();

    page_cache_check(c, &parser, file);
}

/// The in-place check over pieces just written into a file, through the node's mapping.
fn page_cache_check(c: &mut Criterion, parser: &MultipartParser, piece: &[u8]) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    use std::time::{Duration, Instant};
    use upgate::storage::mapped::Window;

    /// The file is written over again from its start after this much, like a new upload.
    const FILE_BYTES: u64 = 256 << 20;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("in_place_check.bin");
    let mut g = c.benchmark_group("in_place_check_page_cache");
    g.throughput(Throughput::Bytes(piece.len() as u64));
    for again in [false, true] {
        let name = if again { "again" } else { "just_written" };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // Read too: the mapping needs it.
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .unwrap();
                let mut window = Window::new(file.as_raw_fd());
                let mut at = 0u64;
                let mut searched = Duration::ZERO;
                for _ in 0..iters {
                    if at + piece.len() as u64 > FILE_BYTES {
                        // A new window for the file written over from its start.
                        window = Window::new(file.as_raw_fd());
                        file.set_len(0).unwrap();
                        at = 0;
                    }
                    file.write_all_at(piece, at).unwrap();
                    let to = at + piece.len() as u64;
                    let search = |window: &mut Window| {
                        window
                            .with_range(at, to, |bytes| parser.find_delimiter(black_box(bytes)))
                            .unwrap()
                    };
                    if again {
                        assert_eq!(search(&mut window), Ok(None));
                    }
                    let t = Instant::now();
                    assert_eq!(search(&mut window), Ok(None));
                    searched += t.elapsed();
                    at = to;
                }
                drop(window);
                searched
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, multipart);
criterion_main!(benches);
