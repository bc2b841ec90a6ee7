//! Arbitrary bytes as an application's answer to a post-callback made from an io_uring thread,
//! read in two pieces: never panics, keeps at most `MAX_ANSWER_BYTES` of the body, and where
//! the bytes are cut never changes what is read. See `upgate::checks::check_callback_answer`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    upgate::checks::check_callback_answer(data);
});
