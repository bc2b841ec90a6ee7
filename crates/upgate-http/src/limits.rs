//! Size limits of the protocol layer. Passed in, never read from the environment, so a test
//! can replay any case with any limits.

/// Bounds on what one connection may make the node buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole request head, request-line to the empty line (`max_head_bytes`).
    pub max_head_bytes: usize,
    /// Header fields in one head. (Trailer fields are discarded, not stored: their section is
    /// bounded by `max_trailer_bytes` only.)
    pub max_headers: usize,
    /// Request-target bytes; longer answers 414.
    pub max_target_bytes: usize,
    /// Trailer section of a chunked body.
    pub max_trailer_bytes: usize,
    /// One chunk-size line including extensions.
    pub max_chunk_line_bytes: usize,
}

/// The compile-time ceiling on `max_headers`: the header array httparse fills lives on the stack.
pub const MAX_HEADERS_CEILING: usize = 256;

/// The compile-time ceiling on `max_head_bytes` (64 KiB, the default): field positions are
/// stored with 16-bit lengths. Browsers send a few KiB; nginx's default allows 8 KiB lines.
pub const MAX_HEAD_BYTES_CEILING: usize = 65536;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 65536,
            max_headers: 100,
            max_target_bytes: 8192,
            max_trailer_bytes: 8192,
            max_chunk_line_bytes: 4096,
        }
    }
}
