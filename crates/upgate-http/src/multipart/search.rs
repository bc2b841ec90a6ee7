//! Finding a whole delimiter (`CRLF "--" boundary`) in bytes checked in place (a large file
//! part's spliced middle): every byte of the file passes through here once, so its speed is the
//! speed of a large form.
//!
//! The file bytes are the user's, and two kinds need two searches:
//! - in text without CRLF (logs, JSON, CSV with LF line ends) there is no CR at all, and
//!   `memchr` for CR runs at memory speed;
//! - in compressed files (images, video, archives) a CR comes every 256 bytes, where a `memchr`
//!   loop stops and starts again at less than half that speed. There two bytes of the delimiter
//!   are tested at once across a vector of positions: the CR that opens it and the dash three
//!   bytes on, which together occur once per 64 KiB of random bytes, and in CRLF text only on
//!   lines whose second byte is a dash. (`memmem` picks its pair by a table made for text,
//!   which for a boundary of letters fires every few bytes of a file of letters.)
//!
//! So `memchr` looks for the next CR, and a CR that came soon switches the next
//! [`DENSE_STRETCH`] bytes to the pair: our own 64-position kernel where the CPU has AVX-512BW
//! ([`avx512`]), `memchr`'s packed-pair finders elsewhere. Every candidate is compared whole:
//! the choice changes the speed, never the answer (the `check` feature's oracle holds it to
//! trying every CR, and a unit test holds each pair this CPU has to a plain search).

#[cfg(target_arch = "x86_64")]
mod avx512;

/// A CR sooner than this after the last one means CRs are frequent here.
const DENSE_GAP: usize = 4096;
/// How far the pair search runs once CRs are frequent, before `memchr` tries again.
const DENSE_STRETCH: usize = 64 * 1024;

/// How many bytes are searched between two looks ahead: a page.
const BLOCK: usize = 4096;
/// How far past the block being searched its lines are asked for: the next page.
const AHEAD: usize = 4096;
/// A cache line, the unit a prefetch brings in.
const LINE: usize = 64;

/// The search for one delimiter, which the caller keeps and passes to [`DelimiterSearch::find`].
#[derive(Clone, Debug)]
pub(super) struct DelimiterSearch {
    pair: Pair,
}

/// The two-byte vector search, with the best code the CPU has.
#[derive(Clone, Debug)]
enum Pair {
    /// Our own 64-position kernel ([`avx512`]), where the CPU has AVX-512BW.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2(memchr::arch::x86_64::avx2::packedpair::Finder),
    #[cfg(target_arch = "x86_64")]
    Sse2(memchr::arch::x86_64::sse2::packedpair::Finder),
    #[cfg(target_arch = "aarch64")]
    Neon(memchr::arch::aarch64::neon::packedpair::Finder),
    /// No vector code: `memchr` for CR alone.
    None,
}

impl DelimiterSearch {
    /// A search for `delimiter`: `CRLF--` and a boundary of at least one byte.
    pub(super) fn new(delimiter: &[u8]) -> DelimiterSearch {
        DelimiterSearch {
            pair: Pair::new(delimiter),
        }
    }

    /// Where the first whole `delimiter` (the one given to [`DelimiterSearch::new`]) starts in
    /// `bytes`.
    ///
    /// The bytes are searched a [`BLOCK`] at a time, and the cache lines [`AHEAD`] bytes on are
    /// asked for before each block: in the node these bytes were just copied into the page
    /// cache by the kernel and are mostly outside L2, in 4 KiB pages that the CPU's own
    /// prefetcher stops at, so without the hint the search waits for every page's first lines.
    pub(super) fn find(&self, bytes: &[u8], delimiter: &[u8]) -> Option<usize> {
        let mut from = 0;
        // Where the current `memchr` run started, for the gap to the CR it finds.
        let mut since = 0;
        // Below this the pair searches (CRs came often); at and past it, `memchr`.
        let mut dense_until = 0;
        let mut fetched = 0;
        while from < bytes.len() {
            let end = (from + BLOCK).min(bytes.len());
            let want = (end + AHEAD).min(bytes.len());
            while fetched < want {
                prefetch(bytes, fetched);
                fetched += LINE;
            }
            if from < dense_until {
                // Any delimiter that starts before `stop` lies wholly in the window.
                let stop = end.min(dense_until);
                let window = &bytes[from..(stop + delimiter.len() - 1).min(bytes.len())];
                if let Some(i) = self.pair.find(window, delimiter) {
                    return Some(from + i);
                }
                from = stop;
                since = from;
                continue;
            }
            let Some(gap) = memchr::memchr(b'\r', &bytes[from..end]) else {
                from = end;
                continue;
            };
            let at = from + gap;
            if bytes[at..].starts_with(delimiter) {
                return Some(at);
            }
            from = at + 1;
            if at - since < DENSE_GAP {
                dense_until = from + DENSE_STRETCH;
            }
            since = from;
        }
        None
    }
}

/// Asks the CPU to bring the cache line holding `bytes[at]` into L1 (nothing if `at` is past the
/// end, or on CPUs without the hint here).
#[inline(always)]
fn prefetch(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(b) = bytes.get(at) {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is a hint: it reads nothing into the program, cannot fault, and the
        // address lies within `bytes`; SSE, which it needs, is part of x86_64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((b as *const u8).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

impl Pair {
    fn new(delimiter: &[u8]) -> Pair {
        Pair::all_here(delimiter).remove(0)
    }

    /// Every pair search this CPU can run for `delimiter`, the fastest first and the fallback
    /// last: [`Pair::new`] takes the first, the tests hold each to a plain search.
    fn all_here(delimiter: &[u8]) -> Vec<Pair> {
        use memchr::arch::all::packedpair::Pair as Indices;
        let mut all = Vec::new();
        // No pair at 0 and 3 in a delimiter shorter than `CRLF--` and a byte: the fallback.
        if let Some(pair) = Indices::with_indices(delimiter, 0, 3) {
            #[cfg(target_arch = "x86_64")]
            {
                use memchr::arch::x86_64::{avx2, sse2};
                if std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                {
                    all.push(Pair::Avx512);
                }
                all.extend(avx2::packedpair::Finder::with_pair(delimiter, pair).map(Pair::Avx2));
                all.extend(sse2::packedpair::Finder::with_pair(delimiter, pair).map(Pair::Sse2));
            }
            #[cfg(target_arch = "aarch64")]
            {
                use memchr::arch::aarch64::neon;
                all.extend(neon::packedpair::Finder::with_pair(delimiter, pair).map(Pair::Neon));
            }
            let _ = pair;
        }
        all.push(Pair::None);
        all
    }

    /// Where the first whole `delimiter` starts in `haystack`.
    fn find(&self, haystack: &[u8], delimiter: &[u8]) -> Option<usize> {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx512` is only made where the CPU has AVX-512F and AVX-512BW, and the
            // haystack is as long as the kernel's first step reads.
            Pair::Avx512 if haystack.len() >= avx512::MIN_HAYSTACK => unsafe {
                avx512::find(haystack, delimiter)
            },
            #[cfg(target_arch = "x86_64")]
            Pair::Avx2(f) if haystack.len() >= f.min_haystack_len() => f.find(haystack, delimiter),
            #[cfg(target_arch = "x86_64")]
            Pair::Sse2(f) if haystack.len() >= f.min_haystack_len() => f.find(haystack, delimiter),
            #[cfg(target_arch = "aarch64")]
            Pair::Neon(f) if haystack.len() >= f.min_haystack_len() => f.find(haystack, delimiter),
            // Shorter than the vectors need (a few dozen bytes), or no vector code.
            _ => memchr::memchr_iter(b'\r', haystack)
                .find(|&at| haystack[at..].starts_with(delimiter)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pair;

    /// Each pair search this CPU has finds the first delimiter wherever it lies: around every
    /// vector step's end and the haystack's, in bytes where the CR and the dash three on come
    /// every few bytes (each step then has candidates that are not the delimiter).
    #[test]
    fn every_pair_search_here_finds_the_first_delimiter() {
        // The shortest delimiter there is, and one of a usual length.
        for delimiter in [b"\r\n--x".as_slice(), b"\r\n--7d2a1bQx"] {
            every_pair_finds(delimiter);
        }
    }

    fn every_pair_finds(delimiter: &[u8]) {
        let pairs = Pair::all_here(delimiter);
        if cfg!(target_arch = "x86_64") {
            assert!(
                pairs.len() >= 3,
                "SSE2, AVX2 or not, and the fallback: {pairs:?}"
            );
        }
        for len in (delimiter.len()..=200).chain([4096 + 7, 4096 + 27]) {
            let base: Vec<u8> = (0..len)
                .map(|i| match i % 7 {
                    0 => b'\r',
                    3 => b'-',
                    _ => b'a' + (i % 13) as u8,
                })
                .collect();
            for pair in &pairs {
                assert_eq!(pair.find(&base, delimiter), None, "{pair:?}, {len} bytes");
            }
            let places: Vec<usize> = if len <= 200 {
                (0..=len - delimiter.len()).collect()
            } else {
                (0..=len - delimiter.len())
                    .filter(|at| at % 64 < 4 || at % 64 > 58 || *at + 80 > len)
                    .collect()
            };
            for at in places {
                let mut bytes = base.clone();
                bytes[at..at + delimiter.len()].copy_from_slice(delimiter);
                // A second one further on, which must not be the answer.
                if at + 2 * delimiter.len() + 5 <= len {
                    let later = at + delimiter.len() + 5;
                    bytes[later..later + delimiter.len()].copy_from_slice(delimiter);
                }
                let want = bytes.windows(delimiter.len()).position(|w| w == delimiter);
                assert_eq!(want, Some(at));
                for pair in &pairs {
                    assert_eq!(
                        pair.find(&bytes, delimiter),
                        want,
                        "{pair:?}, {len} bytes, at {at}"
                    );
                }
            }
        }
    }
}
