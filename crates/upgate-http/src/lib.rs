//! upgate's HTTP/1.1 protocol, sans-IO: bytes in, events and bytes-to-write out.
//!
//! This crate depends only on `bytes`, `httparse`, `memchr`, `smallvec` and `base64` (its `Cargo.toml`):
//! no sockets, no runtime, no clock, no filesystem, and the compiler keeps it so. It knows
//! HTTP/1.1 framing, not what upgate's routes mean: the JSON error format, the routes and the
//! upload flow live in the node crate (`upgate`).
//!
//! ## Layout
//!
//! | file | owns |
//! |---|---|
//! | `conn.rs` | [`H1Conn`]: receive / next_event / accept_body / respond, composing the rest |
//! | `state.rs` | the read and write states and the only functions that change them |
//! | `head.rs` | the request head: one httparse call, field index ranges over frozen bytes |
//! | `framing.rs` | one pass over the fields: body framing, `Expect`, keep-alive, `Host` |
//! | `decode.rs` | body decoders (`Content-Length`, chunked), over the connection's buffer or the caller's |
//! | `encode.rs` | responses, `100 Continue`, chunks |
//! | `error.rs` | [`ProtocolError`] (each with one status and one code) and [`WrongState`] |
//! | `limits.rs` | the configured limits and their ceilings |
//! | `multipart.rs` | [`MultipartParser`]: `multipart/form-data` bodies, streaming, part data as ranges of the caller's buffer |
//! | `resumable.rs` | the header grammar of tus 1.0 and IETF resumable uploads: [`Metadata`], [`Checksum`], [`Concat`], [`InteropVersion`], [`UploadLimit`], [`ResumableError`] |
//! | `check/` | fuzz and property-test oracles (feature `check`, never in production builds) |
//!
//! ## The call protocol
//!
//! ```text
//! conn.receive(bytes) | lend_buffer/restore_buffer   bytes the driver read
//! conn.receive_eof()                                  the peer closed its side
//! conn.next_event()? -> Head | Data | EndOfMessage | NeedData | Paused | Closed
//! conn.take_undecoded() / conn.decode_external(&buf)? -> (used, Data(range) | NeedData | End)
//!                                                     body bytes in the driver's own buffer
//! conn.accept_body()  -> Some(b"HTTP/1.1 100 Continue\r\n\r\n") to write, or None
//! conn.respond(&resp, date) -> Outgoing { bytes, close: KeepAlive | Close | Linger }
//! ```
//!
//! A head always leaves the connection paused: its body is not decoded until the caller calls
//! `accept_body`, which is how the pre-upload callback decides before any body byte is read.
//! See `docs/state-machine.md` for the state diagram (kept in sync with `state.rs`).

#[cfg(any(test, feature = "check"))]
pub mod check;
mod conn;
mod decode;
mod encode;
mod error;
mod framing;
mod head;
mod limits;
mod multipart;
mod resumable;
mod state;

pub use conn::{Event, ExternalError, H1Conn, Outgoing};
pub use decode::{BodyDecoder, ChunkedState, Decoded, Piece};
pub use encode::{chunk, reason, BodyFraming, Response, ResponseBody, CONTINUE, LAST_CHUNK};
pub use error::{ProtocolError, WrongState};
pub use framing::{parse_length, Expectation, Framing, MessageInfo, Version};
pub use head::{
    find_end, is_tchar, parse as parse_head, parse_prefix, HeadEnd, Method, Parsed, RequestHead,
};
pub use limits::{Limits, MAX_HEADERS_CEILING, MAX_HEAD_BYTES_CEILING};
pub use multipart::{
    boundary_of, is_boundary, MultipartError, MultipartEvent, MultipartParser, PartHead,
    MAX_BOUNDARY_BYTES, MAX_PARTS, MAX_PART_HEADER_BYTES, MAX_PREAMBLE_BYTES,
    MAX_TRANSPORT_PADDING,
};
pub use resumable::{
    check_offset, check_offset_octet_stream, format_sf_boolean, format_upload_expires,
    parse_ietf_upload_length, parse_ietf_upload_offset, parse_method_override, parse_tus_resumable,
    parse_upload_complete, parse_upload_defer_length, parse_upload_length, parse_upload_offset,
    sf_boolean, sf_integer, Checksum, ChecksumAlgorithm, Concat, InteropVersion, Metadata,
    ResumableError, UploadLimit, UtcTime, INCONSISTENT_LENGTH_PROBLEM, MAX_CONCAT_PARTS,
    MAX_HTTP_DATE_SECONDS, MAX_METADATA_BYTES, MAX_METADATA_PAIRS, MAX_SF_INTEGER,
    MAX_UPLOAD_NUMBER, MISMATCHING_OFFSET_PROBLEM, OFFSET_OCTET_STREAM, PARTIAL_UPLOAD,
    TUS_CHECKSUM_ALGORITHM, TUS_EXTENSION, TUS_RESUMABLE, TUS_VERSION, UPLOAD_RESUMPTION_SUPPORTED,
    UPLOAD_RESUMPTION_SUPPORTED_REASON,
};
pub use state::CloseMode;
