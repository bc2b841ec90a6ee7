//! Arbitrary bytes as an upload path: `storage::path::parse` never panics, and whatever it
//! accepts stays below the app's directory and round-trips through the download URL. See
//! `upgate::checks::check_path`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    upgate::checks::check_path(data);
});
