//! Arbitrary bytes as the value of every resumable-upload header (tus 1.0 and the IETF draft):
//! no parser panics, every refusal is a `ResumableError` with a tus/IETF status, and whatever
//! is accepted formats back to a value that parses the same (`parse(format(parse(x))) ==
//! parse(x)`): metadata, checksums, concat lists, offsets and lengths, booleans, interop
//! versions. The first bytes also drive the `Upload-Expires` and `Upload-Limit` formatters.
//! See `upgate::http::check::check_resumable_headers`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    upgate::http::check::check_resumable_headers(data);
});
