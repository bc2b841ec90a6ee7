//! Arbitrary bytes as a chunked body: the decoder fed whole and byte by byte yields the same
//! data, end position and error, and never more data than input.
//! See `upgate::http::check::check_chunked`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    upgate::http::check::check_chunked(data);
});
