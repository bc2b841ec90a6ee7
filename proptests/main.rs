//! Property tests of the sans-IO protocol layer (`upgate::http`), run with
//! `cargo test --test proptests`. Each module states its properties in its doc; each property
//! asserts a concrete outcome (an exact event sequence, a round-tripped payload, a status set),
//! not only the absence of a panic. Case counts are bounded so the whole target stays well under
//! a minute in a debug build; raise them with `PROPTEST_CASES=N`.

mod chunked;
mod etcd_watch;
mod garbage;
mod model;
mod multipart;
mod pipeline;
mod resumable;
mod split;
mod tls_records;

use proptest::test_runner::Config;

/// `cases` unless `PROPTEST_CASES` overrides it; no persistence files in the source tree.
pub fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}
