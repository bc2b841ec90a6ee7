//! (b) Chunked bodies round-trip: whatever the payload and however it is cut into chunks —
//! with `encode::chunk` + `LAST_CHUNK`, or by a hand-built encoder with random hex case,
//! leading zeros, extensions and trailers — the decoder, fed whole or in pieces, returns exactly
//! the payload, ends exactly after the last chunk's trailer section, and leaves every byte after
//! it (the next message, or garbage) in the buffer.

use bytes::BytesMut;
use proptest::prelude::*;
use upgate::http::check::{decode_chunked, ChunkedEnd};
use upgate::http::{chunk, BodyDecoder, Decoded, Limits, LAST_CHUNK};

use crate::model::{chunked_body, cuts};

/// Feed sizes: whole, byte by byte, and a few in between.
fn step() -> impl Strategy<Value = usize> {
    prop_oneof![Just(usize::MAX), Just(1usize), 2..64usize, 64..4096usize]
}

/// Asserts the decoder returns `payload` from `wire` + `rest` and stops right before `rest`.
fn assert_round_trip(wire: &[u8], rest: &[u8], payload: &[u8], step: usize) {
    let mut input = wire.to_vec();
    input.extend_from_slice(rest);
    let run = decode_chunked(&input, step, &Limits::default());
    assert_eq!(
        run.end,
        ChunkedEnd::End {
            consumed: wire.len()
        },
        "end position (step {step})"
    );
    assert_eq!(run.data, payload, "payload (step {step})");
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn encode_chunk_round_trips_any_payload_and_chunking(
        payload in prop::collection::vec(any::<u8>(), 0..5000),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        rest in prop::collection::vec(any::<u8>(), 0..64),
        step in step(),
    ) {
        let mut points = cuts(&idx, payload.len());
        points.extend([0, payload.len()]);
        points.sort_unstable();
        let mut wire = Vec::new();
        for w in points.windows(2) {
            wire.extend_from_slice(&chunk(&payload[w[0]..w[1]]));
        }
        wire.extend_from_slice(LAST_CHUNK);
        assert_round_trip(&wire, &rest, &payload, step);
    }

    #[test]
    fn hand_encoded_chunks_with_extensions_and_trailers_round_trip(
        body in chunked_body(),
        rest in prop::collection::vec(any::<u8>(), 0..64),
        step in step(),
    ) {
        assert_round_trip(&body.encode(), &rest, &body.payload(), step);
    }

    #[test]
    fn the_decoder_leaves_the_next_request_untouched(body in chunked_body()) {
        let next = b"GET /app1/next HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut buf = BytesMut::from(&body.encode()[..]);
        buf.extend_from_slice(next);
        let mut decoder = BodyDecoder::chunked();
        let mut out = Vec::new();
        loop {
            match decoder.decode(&mut buf, &Limits::default()) {
                Ok(Decoded::Data(b)) => out.extend_from_slice(&b),
                Ok(Decoded::End) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        prop_assert_eq!(out, body.payload());
        prop_assert_eq!(&buf[..], &next[..]);
    }

    #[test]
    fn a_truncated_body_needs_more_data_and_yields_a_prefix(
        body in chunked_body(),
        cut in any::<prop::sample::Index>(),
        step in step(),
    ) {
        let wire = body.encode();
        let cut = cut.index(wire.len());
        let run = decode_chunked(&wire[..cut], step, &Limits::default());
        prop_assert_eq!(&run.end, &ChunkedEnd::NeedData);
        let payload = body.payload();
        prop_assert!(payload.starts_with(&run.data), "decoded bytes are a prefix of the payload");
    }
}
