//! Request-head parsing: upgate's state machine against raw httparse on the same bytes.
//!
//! For each input, five figures (criterion group `parse_head/<input>`):
//! - `httparse`: `httparse::Request::parse` with a 64-header array (the floor: no validation
//!   beyond syntax, no framing decisions, borrowed result);
//! - `state_machine`: what `H1Conn::next_event` does for a head that arrived in one read:
//!   `parse_prefix` (httparse finds the end; bare-LF check by CR count; target/Host/framing
//!   checks; index ranges) and the head over its own `Bytes`;
//! - `find_end`: the incremental line scan used only while a head is incomplete (it rejects a
//!   bare CR or LF as it arrives);
//! - `parse_head`: `parse_head` alone on an already delimited head;
//! - `h1conn_cycle`: a new `H1Conn`, `receive` the bytes, `next_event` up to `Event::Head`.
//!
//! Run: `cargo bench --bench parse_head -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use upgate::http::{find_end, parse_head, parse_prefix, Event, H1Conn, HeadEnd, Limits};

#[path = "common/heads.rs"]
mod heads;
use heads::{browser_head, CURL_GET, UPLOAD};

fn bench_input(c: &mut Criterion, name: &str, input: &[u8]) {
    let limits = Limits::default();
    let bytes = Bytes::copy_from_slice(input);
    // Sanity: every variant parses this input, and all agree on the number of fields.
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    assert!(req.parse(input).expect("httparse").is_complete());
    let n = req.headers.len();
    assert_eq!(find_end(input, 0), Ok(HeadEnd::Complete(input.len())));
    assert_eq!(
        parse_head(bytes.clone(), &limits)
            .expect("parse_head")
            .fields()
            .count(),
        n
    );

    let mut g = c.benchmark_group(format!("parse_head/{name}"));
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("httparse", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let status = req.parse(black_box(input)).unwrap();
            black_box((status, req.headers.len()));
        })
    });
    g.bench_function("find_end", |b| {
        b.iter(|| black_box(find_end(black_box(input), 0).unwrap()))
    });
    g.bench_function("state_machine", |b| {
        b.iter(|| {
            let raw = black_box(&bytes);
            let parsed = parse_prefix(raw, &limits).unwrap().unwrap();
            let len = parsed.len();
            black_box(parsed.into_head(raw.slice(..len)));
        })
    });
    g.bench_function("parse_head", |b| {
        b.iter(|| black_box(parse_head(black_box(bytes.clone()), &limits).unwrap()))
    });
    g.bench_function("h1conn_cycle", |b| {
        b.iter(|| {
            let mut conn = H1Conn::new(limits);
            conn.receive(black_box(input));
            match conn.next_event() {
                Ok(Event::Head(h)) => black_box(h),
                other => panic!("{other:?}"),
            };
        })
    });
    g.finish();
}

fn heads(c: &mut Criterion) {
    bench_input(c, "upload", UPLOAD);
    bench_input(c, "curl_get", CURL_GET);
    bench_input(c, "browser_40", &browser_head());
}

criterion_group!(benches, heads);
criterion_main!(benches);
