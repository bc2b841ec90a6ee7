//! (t) The TLS record layer after the handshake (`server::tls::records`), for TLS 1.3 and 1.2
//! suites with AES-256-GCM and ChaCha20-Poly1305 (the ring provider's; AES-128 is covered by
//! the curl tests in `tests/tls_records.rs`):
//! - whatever the plaintext, however the sender cut it into writes and however the wire is
//!   cut into reads, and whatever budget the reader gives, the records opened in place give
//!   back exactly the plaintext, in order, using every byte;
//! - one flipped byte anywhere on the wire never yields a forged byte: what is delivered is a
//!   prefix of the plaintext, and the stream either fails or stays incomplete (or, when the
//!   flip hit the low byte of TLS 1.3's ignored legacy version, gives the same plaintext);
//! - after `close_notify` nothing more is read, and everything before it was delivered.

use proptest::prelude::*;
use upgate::checks::records_pair as pair;
use upgate::server::tls::records::Records;

/// Sealed by the peer, `plain` cut into writes of the sizes in `writes` (cycled).
fn wire(peer: &mut Records, plain: &[u8], writes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < plain.len() {
        let n = writes[i % writes.len()].clamp(1, plain.len() - at);
        peer.seal(&plain[at..at + n], &mut out).unwrap();
        at += n;
        i += 1;
    }
    out
}

/// What reading `wire` in reads of `reads` sizes (cycled) gives the node: the plaintext, the
/// bytes used, whether `close_notify` came, and the error if one did.
struct Read {
    plain: Vec<u8>,
    used: usize,
    closed: bool,
    failed: bool,
}

fn read(node: &mut Records, wire: &[u8], reads: &[usize], budget: usize) -> Read {
    let mut buf: Vec<u8> = Vec::new();
    let mut got = Read {
        plain: Vec::new(),
        used: 0,
        closed: false,
        failed: false,
    };
    let mut fed = 0;
    let mut i = 0;
    loop {
        let opened = {
            let plain = &mut got.plain;
            node.open(&mut buf, budget, |bytes, range| {
                assert_eq!(bytes.len(), range.len());
                plain.extend_from_slice(bytes)
            })
        };
        match opened {
            Err(_) => {
                got.failed = true;
                return got;
            }
            Ok(o) => {
                buf.drain(..o.used);
                got.used += o.used;
                if o.closed {
                    got.closed = true;
                    return got;
                }
                if o.used > 0 {
                    continue;
                }
            }
        }
        if fed == wire.len() {
            return got;
        }
        let n = reads[i % reads.len()].clamp(1, wire.len() - fed);
        buf.extend_from_slice(&wire[fed..fed + n]);
        fed += n;
        i += 1;
    }
}

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![1..64usize, 64..5000usize, 5000..40_000usize],
        1..6,
    )
}

proptest! {
    #![proptest_config(crate::config(64))]

    #[test]
    fn opened_in_place_records_give_back_the_plaintext_however_cut(
        s in 0..4usize,
        plain in prop::collection::vec(any::<u8>(), 0..70_000),
        writes in sizes(),
        reads in sizes(),
        budget in prop_oneof![Just(1usize), 1..100_000usize, Just(usize::MAX)],
    ) {
        let (mut node, mut peer) = pair(s);
        let wire = wire(&mut peer, &plain, &writes);
        let got = read(&mut node, &wire, &reads, budget);
        prop_assert!(!got.failed);
        prop_assert!(!got.closed);
        prop_assert_eq!(got.used, wire.len());
        prop_assert_eq!(got.plain, plain);
    }

    #[test]
    fn a_flipped_byte_never_yields_a_forged_byte(
        s in 0..4usize,
        plain in prop::collection::vec(any::<u8>(), 1..40_000),
        writes in sizes(),
        reads in sizes(),
        at in any::<prop::sample::Index>(),
        bit in 0..8u8,
    ) {
        let (mut node, mut peer) = pair(s);
        let mut wire = wire(&mut peer, &plain, &writes);
        let at = at.index(wire.len());
        wire[at] ^= 1 << bit;
        let got = read(&mut node, &wire, &reads, usize::MAX);
        prop_assert!(plain.starts_with(&got.plain), "a forged byte was delivered");
        // Accepted whole only when the flip hit what TLS 1.3 ignores (the low byte of the
        // legacy record version, RFC 8446 5.1), and then nothing changed.
        prop_assert!(
            got.failed || got.used < wire.len() || got.plain == plain,
            "the damaged stream was accepted whole"
        );
    }

    #[test]
    fn nothing_is_read_after_close_notify(
        s in 0..4usize,
        plain in prop::collection::vec(any::<u8>(), 0..20_000),
        after in prop::collection::vec(any::<u8>(), 1..2000),
        writes in sizes(),
        reads in sizes(),
    ) {
        let (mut node, mut peer) = pair(s);
        let mut wire = wire(&mut peer, &plain, &writes);
        peer.alert(None, &mut wire);
        let closed_at = wire.len();
        peer.seal(&after, &mut wire).unwrap();
        let got = read(&mut node, &wire, &reads, usize::MAX);
        prop_assert!(got.closed);
        prop_assert_eq!(got.used, closed_at);
        prop_assert_eq!(got.plain, plain);
    }
}

#[test]
fn an_oversized_record_is_refused_before_it_arrives() {
    let (mut node, _) = pair(0);
    // A header announcing 16 KiB + 2049 bytes of ciphertext: refused on the header alone.
    let mut buf = vec![23, 3, 3, 0x48, 0x01];
    let err = node.open(&mut buf, usize::MAX, |_, _| {}).unwrap_err();
    assert_eq!(err, rustls::Error::PeerSentOversizedRecord);
}
