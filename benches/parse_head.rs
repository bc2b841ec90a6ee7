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

/// A typical upload head, as `upgate upload` or curl sends it (~400 bytes).
const UPLOAD: &[u8] = b"POST /app1/path/file.bin HTTP/1.1\r\n\
Host: upload.example.com\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
Expect: 100-continue\r\n\
appid: app1\r\n\
callback_url_pre: http://app1.example.com/callbacks/callback_url_pre?token=abcdef0123\r\n\
callback_url_post: http://app1.example.com/callbacks/callback_url_post?token=abcdef0123\r\n\
Content-Length: 1048576\r\n\
Content-Type: application/octet-stream\r\n\r\n";

/// A download as curl sends it.
const CURL_GET: &[u8] = b"GET /app1/path/file.bin HTTP/1.1\r\n\
Host: upload.example.com\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\r\n";

/// A browser-like head with 40 fields (~1.8 KB).
fn browser_head() -> Vec<u8> {
    let mut h = b"GET /app1/static/images/photo-2024-01-01.jpg?size=large&v=3 HTTP/1.1\r\n\
Host: upload.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Connection: keep-alive\r\n\
Referer: https://app1.example.com/gallery/2024/01\r\n\
Cookie: session=0123456789abcdef0123456789abcdef; theme=dark; consent=yes\r\n\
Cache-Control: max-age=0\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Ch-Ua: \"Chromium\";v=\"120\", \"Not?A_Brand\";v=\"24\"\r\n\
Sec-Ch-Ua-Mobile: ?0\r\n\
Sec-Ch-Ua-Platform: \"Linux\"\r\n\
If-None-Match: \"5f3c-1a2b3c4d\"\r\n\
If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n\
DNT: 1\r\n"
        .to_vec();
    for i in 0..20 {
        h.extend_from_slice(
            format!("X-Trace-{i:02}: value-{i:02}-0123456789abcdef\r\n").as_bytes(),
        );
    }
    h.extend_from_slice(b"\r\n");
    h
}

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
