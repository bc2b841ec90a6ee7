//! TLS records after the handshake, opened in place by the node's record layer, from a plan of
//! sealed records, raw bytes, flipped bits and `close_notify`, cut in two reads: never panics,
//! the outcome does not depend on the cut, and no byte is delivered that the peer did not
//! seal. See `upgate::checks::check_tls_records`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    upgate::checks::check_tls_records(data);
});
