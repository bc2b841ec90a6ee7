//! Arbitrary bytes as a `multipart/form-data` body: byte 0 and the pairs after it give split
//! points (`check::splits_from_prefix`), the body's first line names the boundary
//! (`--boundary`, else `AaB03x`). Fed whole, at those splits and byte by byte, the parser gives
//! the same parts, body bytes and outcome; body bytes are ranges of what it used; it keeps at
//! most a header block or a possible delimiter; no part body holds a delimiter line.
//! `boundary_of` runs on the first line too. See `upgate::http::check::check_multipart`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    upgate::http::check::check_multipart(data);
});
