//! A streaming, sans-IO `multipart/form-data` parser (RFC 7578 over RFC 2046 §5.1).
//!
//! The caller owns the bytes: [`MultipartParser::parse`] reads from the front of a slice and
//! says how much it used and what it found. Part bodies come out as ranges of that slice
//! ([`MultipartEvent::Data`]), so the node writes a file part straight from its registered I/O
//! buffer; the parser copies only a part's header block (at most [`MAX_PART_HEADER_BYTES`]) and
//! the few bytes at the end of a piece that may begin a boundary delimiter (at most
//! [`MultipartParser::max_held`]), which it gives back as [`MultipartEvent::Held`] if they
//! were data after all. It never asks the caller to keep a tail.
//!
//! ```text
//! Preamble --first delimiter--> Headers --empty line--> Body --delimiter--> Headers ...
//!     |                                                   |
//!     +--close delimiter (no parts)--> Epilogue <-- End -- Closed <--close delimiter
//! ```
//!
//! | file | owns |
//! |---|---|
//! | `multipart.rs` | [`MultipartParser`]: the states above and the only code that changes them |
//! | `multipart/scan.rs` | finding delimiters across pieces; the held-back bytes |
//! | `multipart/part.rs` | a part's header block: gathering it, its lines, `Content-Type` |
//! | `multipart/disposition.rs` | `Content-Disposition`: `name`, `filename`, `filename*` |
//! | `multipart/params.rs` | the `value; name=value` grammar and quoted strings |
//! | `multipart/boundary.rs` | [`boundary_of`] the request's `Content-Type` |
//! | `multipart/error.rs` | [`MultipartError`] |

use std::ops::Range;

mod boundary;
mod disposition;
mod error;
mod params;
mod part;
mod scan;
mod search;

pub use boundary::{boundary_of, is_boundary, MAX_BOUNDARY_BYTES};
pub use error::MultipartError;

use part::HeadBuffer;
use scan::{Found, Scanner};

/// The most bytes of one part's header block, its empty line included.
pub const MAX_PART_HEADER_BYTES: usize = 8 * 1024;
/// The most parts in one body.
pub const MAX_PARTS: usize = 64;
/// The most bytes before the first delimiter (the preamble, which is ignored).
pub const MAX_PREAMBLE_BYTES: usize = 8 * 1024;
/// The most spaces and tabs between a delimiter and its CRLF (RFC 2046 `transport-padding`).
pub const MAX_TRANSPORT_PADDING: usize = 32;

/// A part's headers, as [`MultipartEvent::PartStart`] reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHead {
    /// The form field's name (`Content-Disposition` `name`).
    pub name: String,
    /// The file's name (`filename*`, else `filename`); `Some("")` for a file input left empty.
    pub filename: Option<String>,
    /// The part's `Content-Type` as sent (media type and parameters), if any.
    pub content_type: Option<String>,
}

impl PartHead {
    /// The part is a file (it has a file name), not a text field.
    pub fn is_file(&self) -> bool {
        self.filename.is_some()
    }
}

/// What one call of [`MultipartParser::parse`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartEvent {
    /// A part's headers are complete; its body follows.
    PartStart(PartHead),
    /// Part body bytes: this range of the input passed to this call (never empty).
    Data(Range<usize>),
    /// Part body bytes that were held back as a possible delimiter: [`MultipartParser::held`].
    Held,
    /// The current part's body ended (its delimiter was seen).
    PartEnd,
    /// The close delimiter `--boundary--` was seen. Reported once; later calls consume
    /// everything (the epilogue, ignored) and answer `NeedData`.
    End,
    /// All of the input is used; call again with more.
    NeedData,
}

/// Where the parser is in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Before the first delimiter; `left` is how much more may be skipped.
    Preamble { left: usize },
    /// Inside a part's header block.
    Headers,
    /// Inside a part's body.
    Body,
    /// The close delimiter ended the last part; `End` is still to be reported.
    Closed,
    /// `End` was reported; the rest is epilogue.
    Epilogue,
    /// Refused; the same error on every call.
    Failed(MultipartError),
}

/// Parses one `multipart/form-data` body. See the module doc.
pub struct MultipartParser {
    state: State,
    scanner: Scanner,
    head: HeadBuffer,
    parts: usize,
}

impl MultipartParser {
    /// A parser for a body with `boundary` (from [`boundary_of`]).
    pub fn new(boundary: &[u8]) -> MultipartParser {
        MultipartParser {
            // The scanner counts the CRLF it pretends precedes the body as skipped preamble.
            state: State::Preamble {
                left: MAX_PREAMBLE_BYTES + 2,
            },
            scanner: Scanner::new(boundary),
            head: HeadBuffer::default(),
            parts: 0,
        }
    }

    /// Parses from `input`; returns how many bytes of `input` it used and what it found. The
    /// caller calls it again with `&input[used..]` until `NeedData` (then all of input is
    /// used) — the parser ALWAYS consumes everything eventually: it never asks the caller to
    /// keep a tail. A possible boundary prefix at the end of input is held inside the parser
    /// (at most [`MultipartParser::max_held`] bytes); part header bytes are accumulated inside
    /// (at most [`MAX_PART_HEADER_BYTES`], else error).
    pub fn parse(&mut self, input: &[u8]) -> Result<(usize, MultipartEvent), MultipartError> {
        let step = self.step(input);
        match &step {
            Ok((_, MultipartEvent::Held)) => {}
            Ok(_) => self.scanner.forget_released(),
            Err(e) => self.state = State::Failed(*e),
        }
        step
    }

    /// Bytes the last `MultipartEvent::Held` released (held back as a possible boundary, then
    /// found to be data). Empty after any other event.
    pub fn held(&self) -> &[u8] {
        self.scanner.released()
    }

    /// The body ended (EOF / end of the HTTP body): Ok only if the final boundary was seen.
    pub fn finish(&self) -> Result<(), MultipartError> {
        match &self.state {
            State::Closed | State::Epilogue => Ok(()),
            State::Failed(e) => Err(*e),
            _ => Err(MultipartError::Truncated),
        }
    }

    /// Parts whose headers were complete ([`MultipartEvent::PartStart`]s so far).
    pub fn parts_seen(&self) -> usize {
        self.parts
    }

    /// The most body bytes ever held back as a possible delimiter: `CRLF--boundary`, the
    /// longest transport padding and a CR.
    pub fn max_held(&self) -> usize {
        self.scanner.max_held()
    }

    /// For a caller that moves a part body's bytes without offering them (spliced into a file)
    /// and checks them in place with [`MultipartParser::find_delimiter`]: inside a part's
    /// body, the bytes held back as a possible delimiter, handed out as body bytes (`None`
    /// outside a body). The parser then goes on as if the moved bytes had been body bytes
    /// without a delimiter, which the caller's check makes true (or refuses the body).
    pub fn release_body(&mut self) -> Option<Vec<u8>> {
        (self.state == State::Body).then(|| self.scanner.release_candidate())
    }

    /// Where the first delimiter line wholly inside `bytes` starts (part body bytes checked in
    /// place); a line cut off by their end is decided by a next window that overlaps this one
    /// by [`MultipartParser::max_held`] bytes. An error for a line the parser refuses too.
    pub fn find_delimiter(&self, bytes: &[u8]) -> Result<Option<usize>, MultipartError> {
        self.scanner.find_line(bytes)
    }

    /// [`MultipartParser::find_delimiter`] by its definition, slowly: the oracle for it.
    #[cfg(any(test, feature = "check"))]
    pub fn find_delimiter_by_cr(&self, bytes: &[u8]) -> Result<Option<usize>, MultipartError> {
        self.scanner.find_line_by_cr(bytes)
    }

    /// How many bytes at the end of moved part body bytes (the last window checked with
    /// [`MultipartParser::find_delimiter`]) may begin a delimiter line that the bytes after
    /// them finish: the caller offers them again, first, instead of keeping them as body bytes.
    pub fn cut_off(&self, bytes: &[u8]) -> Result<usize, MultipartError> {
        self.scanner.cut_off_line(bytes)
    }

    /// Bytes of the caller's input kept inside right now (a part's header block so far, or a
    /// possible delimiter): at most [`MAX_PART_HEADER_BYTES`] or [`MultipartParser::max_held`].
    pub fn buffered(&self) -> usize {
        self.head.len() + self.scanner.held_back()
    }

    /// One event from the front of `input`. Skipped bytes (preamble) and delimiter lines that
    /// only open a part produce no event, so this loops until something does.
    fn step(&mut self, input: &[u8]) -> Result<(usize, MultipartEvent), MultipartError> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match &mut self.state {
                State::Preamble { left } => {
                    let (used, found) = self.scanner.next(rest)?;
                    at += used;
                    let skipped = match found {
                        Found::Data(range) => range.len(),
                        Found::Held => self.scanner.released().len(),
                        Found::NeedData => return Ok((at, MultipartEvent::NeedData)),
                        Found::Delimiter { close: true } => {
                            self.state = State::Epilogue;
                            return Ok((at, MultipartEvent::End));
                        }
                        Found::Delimiter { close: false } => {
                            self.open_part()?;
                            continue;
                        }
                    };
                    *left = left
                        .checked_sub(skipped)
                        .ok_or(MultipartError::PreambleTooLarge)?;
                }
                State::Headers => {
                    let (used, head) = self.head.feed(rest)?;
                    at += used;
                    let Some(head) = head else {
                        return Ok((at, MultipartEvent::NeedData));
                    };
                    self.parts += 1;
                    self.state = State::Body;
                    return Ok((at, MultipartEvent::PartStart(head)));
                }
                State::Body => {
                    let (used, found) = self.scanner.next(rest)?;
                    let event = match found {
                        Found::Data(range) => {
                            MultipartEvent::Data(at + range.start..at + range.end)
                        }
                        Found::Held => MultipartEvent::Held,
                        Found::NeedData => MultipartEvent::NeedData,
                        Found::Delimiter { close: true } => {
                            self.state = State::Closed;
                            MultipartEvent::PartEnd
                        }
                        Found::Delimiter { close: false } => {
                            self.open_part()?;
                            MultipartEvent::PartEnd
                        }
                    };
                    return Ok((at + used, event));
                }
                State::Closed => {
                    self.state = State::Epilogue;
                    return Ok((input.len(), MultipartEvent::End));
                }
                State::Epilogue => return Ok((input.len(), MultipartEvent::NeedData)),
                State::Failed(e) => return Err(*e),
            }
        }
    }

    /// A delimiter line opened a part: its header block comes next.
    fn open_part(&mut self) -> Result<(), MultipartError> {
        if self.parts == MAX_PARTS {
            return Err(MultipartError::TooManyParts);
        }
        self.state = State::Headers;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
