//! Arbitrary bytes as one line of an etcd watch stream (`registry = "etcd"`): never panics, and
//! what reads as a message re-encodes to the same message. See `upgate::checks::check_etcd_watch`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    upgate::checks::check_etcd_watch(data);
});
