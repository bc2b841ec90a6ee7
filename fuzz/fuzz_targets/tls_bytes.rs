//! Arbitrary bytes on the TLS port (`tls_listen`), cut in two reads where byte 0 says: never
//! panics, never hangs, the verdict does not depend on the cut, a refused session stays
//! refused, and no plaintext reaches the HTTP engine before a handshake. See
//! `upgate::checks::check_tls_bytes`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    upgate::checks::check_tls_bytes(data);
});
