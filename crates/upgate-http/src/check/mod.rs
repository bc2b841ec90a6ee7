//! Invariant checks for the protocol layer, shared by the fuzz targets (`fuzz/`), the seed
//! replay test (`tests/fuzz_corpus.rs`) and the property tests (`proptests/`).
//!
//! Every `check_*` function takes arbitrary bytes, runs the parser on them, and panics (with
//! `assert!`) when an invariant breaks. Returning normally means the input was handled as the
//! protocol layer promises, whether it was a valid request or garbage. The functions use only
//! the public API of [`crate`], so they test what the driver sees.
//!
//! | function | invariants |
//! |---|---|
//! | [`check_head`] | `find_end`/`parse_prefix`/`parse_head` never panic and agree on where a head ends; resuming `find_end` agrees with one scan; bytes after a head are never looked at; a parsed head is a prefix of the input and its fields are views of it; errors answer 4xx/5xx |
//! | [`check_chunked`] | data out ≤ bytes in; whole and byte-by-byte feeding give the same data, end position and error |
//! | [`check_multipart`] | the `multipart/form-data` parser fed whole, in the given splits and byte by byte yields the same parts, body bytes and outcome; every `Data` is a range of what was used; it never keeps more than a header block or `max_held` bytes; `End` once, errors sticky; no part body holds a delimiter line; [`check_boundary_of`] on the first line |
//! | [`check_resumable_headers`] | every resumable-upload header parser on the same bytes never panics; refusals are [`crate::ResumableError`]s with a tus/IETF status; `parse(format(parse(x))) == parse(x)` for metadata, checksums, concat lists, numbers, booleans, interop versions; tus and IETF numbers agree; `Upload-Expires` and `Upload-Limit` are well formed |
//! | [`check_conn`] | `H1Conn` fed whole, in the given splits and byte by byte yields the same [`Step`]s; only `ProtocolError` comes out; body bytes out ≤ bytes in |
//!
//! Each runs twice: with [`Limits::default`] and with [`tight_limits`], so short fuzz inputs
//! reach the size limits too.

use bytes::{Bytes, BytesMut};

use crate::{
    find_end, is_tchar, parse_head, parse_length, parse_prefix, BodyDecoder, CloseMode, Decoded,
    Event, Expectation, Framing, H1Conn, HeadEnd, Limits, Method, ProtocolError, RequestHead,
    Response, Version, CONTINUE,
};

/// The statuses a [`ProtocolError`] may answer with.
pub const ERROR_STATUSES: [u16; 5] = [400, 414, 431, 501, 505];

/// The date the checks pass to `respond` (the layer never reads a clock).
pub const DATE: &str = "Thu, 01 Jan 2026 00:00:00 GMT";

/// Small limits, so that inputs of a few hundred bytes hit every limit path.
pub fn tight_limits() -> Limits {
    Limits {
        max_head_bytes: 256,
        max_headers: 8,
        max_target_bytes: 64,
        max_trailer_bytes: 64,
        max_chunk_line_bytes: 24,
    }
}

fn limit_sets() -> [Limits; 2] {
    [Limits::default(), tight_limits()]
}

/// Asserts what every protocol error must satisfy: a status from [`ERROR_STATUSES`], a
/// non-empty snake_case code and a message.
pub fn check_error(e: ProtocolError) {
    assert!(
        ERROR_STATUSES.contains(&e.status()),
        "{e:?} answers {} (not one of {ERROR_STATUSES:?})",
        e.status()
    );
    let code = e.code();
    assert!(
        !code.is_empty()
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
    );
    assert!(!e.message().is_empty());
}

/// `inner` lies inside `outer` in memory (a view, not a copy).
fn is_view(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

mod chunked;
mod conn;
mod head;
mod multipart;
mod resumable;

pub use chunked::*;
pub use conn::*;
pub use head::*;
pub use multipart::*;
pub use resumable::*;
