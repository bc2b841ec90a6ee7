//! Arbitrary bytes as a request head: `find_end` and `parse_head` never panic, a parsed head
//! is a set of views into the input whose framing agrees with its fields, and every error
//! answers 400/414/431/501/505. See `upgate::http::check::check_head`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    upgate::http::check::check_head(data);
});
