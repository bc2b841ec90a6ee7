//! (c) Arbitrary bytes — random, HTTP-shaped, or a valid request with one byte changed —
//! never panic `H1Conn`, `find_end` or `parse_head`; whole and split feeding agree (the
//! `check_*` functions assert it); and every error answers 400, 414, 431, 501 or 505.

use bytes::Bytes;
use proptest::prelude::*;
use upgate::http::check::{self, drive, Step, ERROR_STATUSES};
use upgate::http::{parse_head, Limits};

use crate::model::{cuts, request};

/// Pieces that make garbage look like HTTP, so it gets past the request-line.
fn http_shaped() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(&b"POST /app1/f HTTP/1.1\r\n"[..]),
        Just(&b"GET / HTTP/1.0\r\n"[..]),
        Just(&b"Host: h\r\n"[..]),
        Just(&b"Content-Length: "[..]),
        Just(&b"Transfer-Encoding: chunked\r\n"[..]),
        Just(&b"Transfer-Encoding: gzip\r\n"[..]),
        Just(&b"Expect: 100-continue\r\n"[..]),
        Just(&b"Connection: close\r\n"[..]),
        Just(&b"appid: app1\r\n"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\n"[..]),
        Just(&b"\r"[..]),
        Just(&b" "[..]),
        Just(&b"\t"[..]),
        Just(&b":"[..]),
        Just(&b";"[..]),
        Just(&b"0"[..]),
        Just(&b"5"[..]),
        Just(&b"F"[..]),
        Just(&b"FFFFFFFFFFFFFFFFFF"[..]),
        Just(&b"hello"[..]),
        Just(&b"HTTP/2.0"[..]),
    ];
    let piece =
        prop_oneof![4 => piece.prop_map(|p| p.to_vec()), 1 => any::<u8>().prop_map(|b| vec![b])];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// Every error in `steps` has one of the allowed statuses.
fn assert_error_statuses(steps: &[Step]) {
    for s in steps {
        if let Step::Error(e) = s {
            assert!(
                ERROR_STATUSES.contains(&e.status()),
                "{e:?} → {}",
                e.status()
            );
        }
    }
    // A connection run always ends in Closed or an error, and only there.
    let last = steps.last().expect("a run has at least one step");
    assert!(
        matches!(last, Step::Closed | Step::Error(_)),
        "ends with {last:?}"
    );
    let terminal = steps
        .iter()
        .filter(|s| matches!(s, Step::Closed | Step::Error(_)))
        .count();
    assert_eq!(terminal, 1);
}

proptest! {
    #![proptest_config(crate::config(192))]

    #[test]
    fn random_bytes_never_break_the_connection(
        data in prop::collection::vec(any::<u8>(), 0..512),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        check::check_conn(&data, &cuts(&idx, data.len()));
        assert_error_statuses(&drive(&data, &[], &Limits::default()));
    }

    #[test]
    fn http_shaped_garbage_never_breaks_any_layer(
        data in http_shaped(),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        check::check_head(&data);
        check::check_chunked(&data);
        check::check_conn(&data, &cuts(&idx, data.len()));
        assert_error_statuses(&drive(&data, &[], &check::tight_limits()));
    }

    #[test]
    fn parse_head_errors_have_a_known_status(data in http_shaped()) {
        for limits in [Limits::default(), check::tight_limits()] {
            match parse_head(Bytes::from(data.clone()), &limits) {
                Ok(head) => prop_assert!(data.starts_with(head.raw()) && !head.raw().is_empty()),
                Err(e) => prop_assert!(ERROR_STATUSES.contains(&e.status()), "{:?}", e),
            }
        }
        check::check_head(&data);
    }

    #[test]
    fn a_mutated_valid_request_never_breaks_the_connection(
        req in request(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![Just(b'\n'), Just(b'\r'), Just(b' '), Just(b':'), Just(0u8), any::<u8>()],
        op in 0..3u8,
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut wire = req.encode();
        let at = at.index(wire.len());
        match op {
            0 => wire[at] = byte,
            1 => wire.insert(at, byte),
            _ => { wire.remove(at); }
        }
        check::check_conn(&wire, &cuts(&idx, wire.len()));
        assert_error_statuses(&drive(&wire, &[], &Limits::default()));
    }
}
