//! Protocol errors: each names what was wrong with the peer's bytes and maps to exactly one
//! status code and one JSON `error` code, so the driver never matches on strings.

use std::fmt;

/// Something in the request bytes that HTTP/1.1 (RFC 9112/9110) does not allow, or that is over
/// a configured limit. After any of these the connection answers once and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolError {
    /// The head did not end within `max_head_bytes`.
    HeadTooLarge,
    /// More header fields than `max_headers`.
    TooManyHeaders,
    /// The request-target is longer than `max_target_bytes`.
    TargetTooLong,
    /// A well-formed `HTTP/x.y` other than 1.0 and 1.1.
    UnsupportedVersion,
    /// The request-line is not `method SP target SP version`.
    BadRequestLine,
    /// The method is not a token.
    BadMethod,
    /// The target is neither origin-form, absolute-form nor `*` for OPTIONS.
    BadTarget,
    /// A field name that is not a token, or whitespace before the colon.
    BadHeaderName,
    /// A field value with NUL or other control bytes.
    BadHeaderValue,
    /// A line folded with leading whitespace (obs-fold), rejected by RFC 9112 §5.2.
    ObsFold,
    /// A line end other than CRLF (bare LF or bare CR).
    BadLineEnding,
    /// HTTP/1.1 without `Host`.
    MissingHost,
    /// More than one `Host`, or an invalid one.
    BadHost,
    /// `Content-Length` that is not plain digits or overflows.
    BadContentLength,
    /// Several `Content-Length` values that differ.
    ConflictingContentLength,
    /// `Content-Length` together with `Transfer-Encoding` (a smuggling shape).
    LengthWithTransferEncoding,
    /// `Transfer-Encoding` whose final coding is not a single `chunked`.
    ChunkedNotFinal,
    /// A transfer coding other than `chunked`.
    UnknownTransferCoding,
    /// `Transfer-Encoding` in an HTTP/1.0 request (RFC 9112 §6.1).
    TransferEncodingInHttp10,
    /// A chunk-size line that is not hex digits (optionally followed by extensions).
    BadChunkSize,
    /// A chunk size that does not fit in 64 bits.
    ChunkSizeOverflow,
    /// A chunk-size line longer than the limit (huge extensions).
    ChunkLineTooLong,
    /// Chunk data not followed by CRLF.
    BadChunkEnd,
    /// The trailer section is over the limit.
    TrailersTooLarge,
    /// A trailer field that is not `name: value`.
    BadTrailer,
    /// The peer closed the connection inside a head.
    IncompleteHead,
    /// The peer closed the connection inside a body.
    IncompleteBody,
}

impl ProtocolError {
    /// Every protocol error, once (tests and oracles walk them).
    pub const ALL: [ProtocolError; 27] = {
        use ProtocolError::*;
        [
            HeadTooLarge,
            TooManyHeaders,
            TargetTooLong,
            UnsupportedVersion,
            BadRequestLine,
            BadMethod,
            BadTarget,
            BadHeaderName,
            BadHeaderValue,
            ObsFold,
            BadLineEnding,
            MissingHost,
            BadHost,
            BadContentLength,
            ConflictingContentLength,
            LengthWithTransferEncoding,
            ChunkedNotFinal,
            UnknownTransferCoding,
            TransferEncodingInHttp10,
            BadChunkSize,
            ChunkSizeOverflow,
            ChunkLineTooLong,
            BadChunkEnd,
            TrailersTooLarge,
            BadTrailer,
            IncompleteHead,
            IncompleteBody,
        ]
    };

    /// The status this error answers with (a hint, h11's `error_status_hint`: the node's error
    /// model adopts it).
    pub fn status(self) -> u16 {
        use ProtocolError::*;
        match self {
            HeadTooLarge | TooManyHeaders | TrailersTooLarge => 431,
            TargetTooLong => 414,
            UnsupportedVersion => 505,
            UnknownTransferCoding => 501,
            _ => 400,
        }
    }

    /// The JSON `error` code.
    pub fn code(self) -> &'static str {
        use ProtocolError::*;
        match self {
            HeadTooLarge => "head_too_large",
            TooManyHeaders => "too_many_headers",
            TargetTooLong => "target_too_long",
            UnsupportedVersion => "version_not_supported",
            BadRequestLine => "bad_request_line",
            BadMethod => "bad_method",
            BadTarget => "bad_target",
            BadHeaderName => "bad_header_name",
            BadHeaderValue => "bad_header_value",
            ObsFold => "obs_fold",
            BadLineEnding => "bad_line_ending",
            MissingHost => "missing_host",
            BadHost => "bad_host",
            BadContentLength => "bad_content_length",
            ConflictingContentLength => "conflicting_content_length",
            LengthWithTransferEncoding => "length_with_transfer_encoding",
            ChunkedNotFinal => "chunked_not_final",
            UnknownTransferCoding => "unknown_transfer_coding",
            TransferEncodingInHttp10 => "transfer_encoding_in_http10",
            BadChunkSize => "bad_chunk_size",
            ChunkSizeOverflow => "chunk_size_overflow",
            ChunkLineTooLong => "chunk_line_too_long",
            BadChunkEnd => "bad_chunk_end",
            TrailersTooLarge => "trailers_too_large",
            BadTrailer => "bad_trailer",
            IncompleteHead => "incomplete_head",
            IncompleteBody => "incomplete_body",
        }
    }

    /// Human text for the JSON `message`.
    pub fn message(self) -> &'static str {
        use ProtocolError::*;
        match self {
            HeadTooLarge => "request head is larger than the node accepts",
            TooManyHeaders => "request has more header fields than the node accepts",
            TargetTooLong => "request-target is longer than the node accepts",
            UnsupportedVersion => "only HTTP/1.0 and HTTP/1.1 are supported",
            BadRequestLine => "request-line is malformed",
            BadMethod => "method is not a valid token",
            BadTarget => "request-target must be origin-form, absolute-form or * for OPTIONS",
            BadHeaderName => "header field name is not a valid token",
            BadHeaderValue => "header field value contains invalid bytes",
            ObsFold => "obsolete line folding is not allowed",
            BadLineEnding => "lines must end with CRLF",
            MissingHost => "HTTP/1.1 requests must carry a Host header",
            BadHost => "Host header is repeated or invalid",
            BadContentLength => "Content-Length must be a decimal number that fits in 64 bits",
            ConflictingContentLength => "Content-Length values differ",
            LengthWithTransferEncoding => {
                "Content-Length and Transfer-Encoding must not both be sent"
            }
            ChunkedNotFinal => "chunked must be the final transfer coding, applied once",
            UnknownTransferCoding => "only the chunked transfer coding is supported",
            TransferEncodingInHttp10 => "Transfer-Encoding is not allowed in HTTP/1.0",
            BadChunkSize => "chunk size is not a hexadecimal number",
            ChunkSizeOverflow => "chunk size does not fit in 64 bits",
            ChunkLineTooLong => "chunk-size line is too long",
            BadChunkEnd => "chunk data must be followed by CRLF",
            TrailersTooLarge => "trailer section is larger than the node accepts",
            BadTrailer => "trailer field is malformed",
            IncompleteHead => "connection closed inside the request head",
            IncompleteBody => "connection closed inside the request body",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.status())
    }
}

impl std::error::Error for ProtocolError {}

/// A call the connection's current state does not allow (h11's `LocalProtocolError`): a bug in
/// the caller, never the peer's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongState {
    /// The operation that was attempted.
    pub op: &'static str,
    /// The state it was attempted in.
    pub state: &'static str,
}

impl fmt::Display for WrongState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not allowed in state {}", self.op, self.state)
    }
}

impl std::error::Error for WrongState {}
