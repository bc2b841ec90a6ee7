//! Arbitrary bytes fed to an `H1Conn` in arbitrary splits. Byte 0 gives the number of split
//! points (low 4 bits), then two bytes each; the rest is the connection's input. Whole, split
//! and byte-by-byte feeding must yield the same events, with `accept_body` after each head and
//! `respond` after each message so pipelined requests are reached.
//! See `upgate::http::check::check_conn`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (splits, data) = upgate::http::check::splits_from_prefix(input);
    upgate::http::check::check_conn(data, &splits);
});
