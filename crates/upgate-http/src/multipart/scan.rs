//! Finding boundary delimiters in a stream of body bytes that arrives in pieces of any size.
//!
//! A delimiter line is `CRLF "--" boundary`, then up to [`MAX_TRANSPORT_PADDING`] spaces or
//! tabs and CRLF, or `--` right after the boundary (the close delimiter; RFC 2046 §5.1.1). Bytes
//! that start like one but continue otherwise (`--boundaryX`, `--boundar` CRLF) are data.
//!
//! Everything a delimiter could start with begins with CR, so a candidate always starts at a CR.
//! The bytes of a piece are data up to the first candidate; a candidate cut off by the end of
//! the piece is copied into [`Scanner::candidate`] (at most [`Scanner::max_held`] bytes) and
//! decided when more bytes come. If it turns out to be data, [`Found::Held`] hands it out from
//! [`Scanner::released`]: the only body bytes this module ever copies.

use std::ops::Range;

use memchr::memmem::Finder;

use super::search::DelimiterSearch;
use super::{MultipartError, MAX_TRANSPORT_PADDING};

/// What the front of the bytes offered to [`Scanner::next`] held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Found {
    /// Data: this range of the input (never empty).
    Data(Range<usize>),
    /// Data that was held back as a possible delimiter: [`Scanner::released`].
    Held,
    /// A whole delimiter line; `close` for `--boundary--`.
    Delimiter { close: bool },
    /// The input is used up (a cut-off candidate, if any, is held).
    NeedData,
}

/// How the bytes at a candidate position read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// A delimiter line of `len` bytes.
    Delimiter { len: usize, close: bool },
    /// Could still become one: all of the bytes so far fit.
    Partial,
    /// Not a delimiter: the candidate's first byte is data.
    No,
}

pub(super) struct Scanner {
    /// `CRLF "--" boundary`.
    delimiter: Vec<u8>,
    finder: Finder<'static>,
    /// The search of bytes checked in place ([`Scanner::find_line`]).
    search: DelimiterSearch,
    /// Bytes from earlier pieces that may begin a delimiter (empty, or starts with CR).
    candidate: Vec<u8>,
    /// What the last [`Found::Held`] released.
    released: Vec<u8>,
}

impl Scanner {
    /// A scanner for the body of a form with `boundary`. It acts as if a CRLF preceded the
    /// body's first byte, so a body that opens with `--boundary` (no CRLF, as RFC 2046 allows
    /// only there) matches like any other delimiter.
    pub(super) fn new(boundary: &[u8]) -> Scanner {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary);
        let finder = Finder::new(&delimiter).into_owned();
        let search = DelimiterSearch::new(&delimiter);
        let mut candidate = Vec::with_capacity(delimiter.len() + MAX_TRANSPORT_PADDING + 2);
        candidate.extend_from_slice(b"\r\n");
        Scanner {
            delimiter,
            finder,
            search,
            candidate,
            released: Vec::new(),
        }
    }

    /// The most bytes ever held back: a delimiter, its longest padding and a CR.
    pub(super) fn max_held(&self) -> usize {
        self.delimiter.len() + MAX_TRANSPORT_PADDING + 1
    }

    /// Bytes held back right now as a possible delimiter.
    pub(super) fn held_back(&self) -> usize {
        self.candidate.len()
    }

    /// Bytes the last [`Found::Held`] released.
    pub(super) fn released(&self) -> &[u8] {
        &self.released
    }

    pub(super) fn forget_released(&mut self) {
        self.released.clear();
    }

    /// Hands out the held candidate, as data: the caller moves the bytes that follow past the
    /// scanner and checks them with [`Scanner::find_line`].
    pub(super) fn release_candidate(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.candidate)
    }

    /// Where the first delimiter line wholly inside `bytes` starts; a candidate cut off by
    /// their end is not one (a window overlapping this one by [`Scanner::max_held`] bytes
    /// decides it).
    pub(super) fn find_line(&self, bytes: &[u8]) -> Result<Option<usize>, MultipartError> {
        // Only a whole delimiter can open a line `classify` takes or refuses; a shorter one is
        // cut off by the end, which is "none" here too.
        let mut from = 0;
        while let Some(i) = self.search.find(&bytes[from..], &self.delimiter) {
            let at = from + i;
            match classify(&bytes[at..], &self.delimiter)? {
                Match::Delimiter { .. } => return Ok(Some(at)),
                Match::Partial => return Ok(None),
                Match::No => from = at + 1,
            }
        }
        Ok(None)
    }

    /// [`Scanner::find_line`] by its definition: every CR a candidate, in order (the oracle
    /// the fuzz target and property tests hold the pair search to).
    #[cfg(any(test, feature = "check"))]
    pub(super) fn find_line_by_cr(&self, bytes: &[u8]) -> Result<Option<usize>, MultipartError> {
        for at in memchr::memchr_iter(b'\r', bytes) {
            match classify(&bytes[at..], &self.delimiter)? {
                Match::Delimiter { .. } => return Ok(Some(at)),
                Match::Partial => return Ok(None),
                Match::No => {}
            }
        }
        Ok(None)
    }

    /// How many bytes at the end of `bytes` begin a delimiter line cut off by their end (0 when
    /// none): a caller that moved `bytes` past the scanner hands these back to it, so the
    /// bytes that follow decide them (a delimiter straddling the end of the moved bytes is
    /// found, not taken for data).
    pub(super) fn cut_off_line(&self, bytes: &[u8]) -> Result<usize, MultipartError> {
        let window = bytes.len().saturating_sub(self.max_held());
        for at in memchr::memchr_iter(b'\r', &bytes[window..]).map(|i| window + i) {
            if let Match::Partial = classify(&bytes[at..], &self.delimiter)? {
                return Ok(bytes.len() - at);
            }
        }
        Ok(0)
    }

    /// Reads from the front of `input`: how many bytes were used and what they were.
    pub(super) fn next(&mut self, input: &[u8]) -> Result<(usize, Found), MultipartError> {
        self.released.clear();
        if self.candidate.is_empty() {
            self.search(input)
        } else {
            self.resume(input)
        }
    }

    /// Decides the held candidate with the bytes of `input`, copying only as many as that takes.
    fn resume(&mut self, input: &[u8]) -> Result<(usize, Found), MultipartError> {
        if input.is_empty() {
            return Ok((0, Found::NeedData));
        }
        let old = self.candidate.len();
        // `max_held + 1` bytes always decide (see `classify`).
        let take = input.len().min(self.max_held() + 1 - old);
        self.candidate.extend_from_slice(&input[..take]);
        match classify(&self.candidate, &self.delimiter)? {
            Match::Partial => {
                debug_assert_eq!(take, input.len(), "max_held + 1 bytes always decide");
                Ok((take, Found::NeedData))
            }
            Match::Delimiter { len, close } => {
                self.candidate.clear();
                Ok((len - old, Found::Delimiter { close }))
            }
            Match::No => {
                // Give the input bytes back (they are offered again), and release the held bytes
                // up to the next CR among them: a delimiter may still start there.
                self.candidate.truncate(old);
                let next = memchr::memchr(b'\r', &self.candidate[1..]).map_or(old, |i| i + 1);
                self.released.extend_from_slice(&self.candidate[..next]);
                self.candidate.drain(..next);
                Ok((0, Found::Held))
            }
        }
    }

    /// Finds the first delimiter or possible delimiter in `input`; the bytes before it are data.
    fn search(&mut self, input: &[u8]) -> Result<(usize, Found), MultipartError> {
        let mut from = 0;
        let (stop, found) = loop {
            match self.finder.find(&input[from..]) {
                Some(i) => {
                    let at = from + i;
                    match classify(&input[at..], &self.delimiter)? {
                        Match::No => from = at + 1,
                        m => break (at, Some(m)),
                    }
                }
                None => break (self.cut_off(input, from), None),
            }
        };
        if stop > 0 {
            return Ok((stop, Found::Data(0..stop)));
        }
        match found {
            Some(Match::Delimiter { len, close }) => Ok((len, Found::Delimiter { close })),
            // A possible delimiter at the front that runs to the end of the input: hold it.
            _ => {
                self.candidate.extend_from_slice(input);
                Ok((input.len(), Found::NeedData))
            }
        }
    }

    /// Where a delimiter cut off by the end of `input` starts (`input.len()` if none), given
    /// that no whole one starts at or after `from`. It is shorter than the delimiter, so it lies
    /// in the last `delimiter.len() - 1` bytes.
    fn cut_off(&self, input: &[u8], from: usize) -> usize {
        let window = from.max(input.len().saturating_sub(self.delimiter.len() - 1));
        memchr::memchr_iter(b'\r', &input[window..])
            .map(|i| window + i)
            .find(|&at| self.delimiter.starts_with(&input[at..]))
            .unwrap_or(input.len())
    }
}

/// Reads `bytes`, which start at a candidate position, against `delimiter`. Decides within
/// `delimiter.len() + MAX_TRANSPORT_PADDING + 2` bytes: after the padding limit more padding
/// is an error.
fn classify(bytes: &[u8], delimiter: &[u8]) -> Result<Match, MultipartError> {
    let n = bytes.len().min(delimiter.len());
    if bytes[..n] != delimiter[..n] {
        return Ok(Match::No);
    }
    if bytes.len() < delimiter.len() {
        return Ok(Match::Partial);
    }
    let after = &bytes[delimiter.len()..];
    // RFC 2046: `close-delimiter := delimiter "--"`, padding only after it (and ignored there
    // with the epilogue).
    match after {
        [b'-', b'-', ..] => {
            return Ok(Match::Delimiter {
                len: delimiter.len() + 2,
                close: true,
            })
        }
        [b'-'] => return Ok(Match::Partial),
        _ => {}
    }
    let padding = after
        .iter()
        .take(MAX_TRANSPORT_PADDING + 1)
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    if padding > MAX_TRANSPORT_PADDING {
        return Err(MultipartError::BadDelimiter);
    }
    Ok(match &after[padding..] {
        [] | [b'\r'] => Match::Partial,
        [b'\r', b'\n', ..] => Match::Delimiter {
            len: delimiter.len() + padding + 2,
            close: false,
        },
        _ => Match::No,
    })
}
