//! Arbitrary bytes as a registration body (form or JSON): the parsers never panic, and the form
//! parser's result round-trips. See `upgate::checks::check_register_form`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    upgate::checks::check_register_form(data);
});
