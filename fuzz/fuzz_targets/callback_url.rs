//! Arbitrary bytes as a client-carried callback URL (and an app allow entry): the SSRF policy
//! never panics and allows only what is listed, in any spelling of an address. See
//! `upgate::checks::check_callback_url`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    upgate::checks::check_callback_url(data);
});
