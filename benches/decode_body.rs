//! Body decoding throughput, per MiB of payload: `Content-Length` against chunked.
//!
//! - `length`, `chunked_16k`, `chunked_1k`: the decoder alone (`BodyDecoder::decode` until
//!   `End`) on a 1 MiB body already in one buffer; setting the buffer up is outside the timing.
//! - `h1conn_length_64k_reads`, `h1conn_chunked16k_64k_reads`: the whole `H1Conn` path as the
//!   driver uses it: head, `accept_body`, then the body arriving in 64 KiB reads (`receive`,
//!   which copies into the connection's buffer, then `next_event` until `NeedData`).
//!
//! Run: `cargo bench --bench decode_body -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use upgate::http::{chunk, BodyDecoder, Decoded, Event, H1Conn, Limits, LAST_CHUNK};

const MIB: usize = 1 << 20;

fn payload() -> Vec<u8> {
    (0..MIB).map(|i| (i * 31 % 251) as u8).collect()
}

fn chunked(payload: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload.len() / size * 12 + 8);
    for piece in payload.chunks(size) {
        out.extend_from_slice(&chunk(piece));
    }
    out.extend_from_slice(LAST_CHUNK);
    out
}

/// Decodes everything in `buf`; returns the payload bytes seen.
fn decode_all(mut decoder: BodyDecoder, mut buf: BytesMut, limits: &Limits) -> usize {
    let mut n = 0;
    loop {
        match decoder.decode(&mut buf, limits).unwrap() {
            Decoded::Data(b) => n += black_box(b).len(),
            Decoded::End => return n,
            Decoded::NeedData => panic!("body incomplete"),
        }
    }
}

/// One request through `H1Conn`, the body fed in `read`-sized pieces; returns payload bytes.
fn conn_cycle(head: &[u8], body: &[u8], read: usize) -> usize {
    let mut conn = H1Conn::new(Limits::default());
    conn.receive(head);
    assert!(matches!(conn.next_event(), Ok(Event::Head(_))));
    conn.accept_body().unwrap();
    let mut n = 0;
    for piece in body.chunks(read) {
        conn.receive(piece);
        loop {
            match conn.next_event().unwrap() {
                Event::Data(b) => n += black_box(b).len(),
                Event::NeedData => break,
                Event::EndOfMessage => return n,
                other => panic!("{other:?}"),
            }
        }
    }
    match conn.next_event().unwrap() {
        Event::EndOfMessage => n,
        other => panic!("{other:?}"),
    }
}

fn bodies(c: &mut Criterion) {
    let limits = Limits::default();
    let payload = payload();
    let chunked_16k = chunked(&payload, 16 * 1024);
    let chunked_1k = chunked(&payload, 1024);

    let mut g = c.benchmark_group("decode_body");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("length", |b| {
        b.iter_batched(
            || BytesMut::from(&payload[..]),
            |buf| {
                assert_eq!(
                    decode_all(BodyDecoder::length(MIB as u64), buf, &limits),
                    MIB
                )
            },
            BatchSize::LargeInput,
        )
    });
    for (name, wire) in [("chunked_16k", &chunked_16k), ("chunked_1k", &chunked_1k)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                |buf| assert_eq!(decode_all(BodyDecoder::chunked(), buf, &limits), MIB),
                BatchSize::LargeInput,
            )
        });
    }

    let length_head = format!("PUT /app1/f HTTP/1.1\r\nHost: h\r\nContent-Length: {MIB}\r\n\r\n");
    let chunked_head = b"PUT /app1/f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    g.bench_function("h1conn_length_64k_reads", |b| {
        b.iter(|| assert_eq!(conn_cycle(length_head.as_bytes(), &payload, 64 * 1024), MIB))
    });
    g.bench_function("h1conn_chunked16k_64k_reads", |b| {
        b.iter(|| assert_eq!(conn_cycle(chunked_head, &chunked_16k, 64 * 1024), MIB))
    });
    g.finish();
}

criterion_group!(benches, bodies);
criterion_main!(benches);
