//! Invariants of the chunked decoder ([`check_chunked`]).

use super::*;

/// How a chunked decode run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkedEnd {
    /// The body ended after `consumed` input bytes; the rest stays buffered.
    End {
        consumed: usize,
    },
    /// The input ran out mid-body.
    NeedData,
    Error(ProtocolError),
}

/// The body a chunked decoder produced from some input, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedRun {
    pub data: Vec<u8>,
    pub end: ChunkedEnd,
}

/// Decodes `data` as a chunked body, fed in pieces of `step` bytes (`usize::MAX`: whole),
/// checking the per-call invariants on the way.
pub fn decode_chunked(data: &[u8], step: usize, limits: &Limits) -> ChunkedRun {
    let mut decoder = BodyDecoder::chunked();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        let before = buf.len();
        let decoded = decoder.decode(&mut buf, limits);
        let consumed = fed - buf.len();
        assert!(buf.len() <= before, "decode must not grow the buffer");
        match decoded {
            Ok(Decoded::Data(b)) => {
                assert!(!b.is_empty(), "Data must carry bytes");
                assert_eq!(
                    &data[consumed - b.len()..consumed],
                    &b[..],
                    "Data must be the bytes just consumed"
                );
                out.extend_from_slice(&b);
            }
            Ok(Decoded::End) => {
                assert!(decoder.is_done());
                let left = buf.len();
                assert_eq!(
                    decoder.decode(&mut buf, limits),
                    Ok(Decoded::End),
                    "End is final"
                );
                assert_eq!(buf.len(), left, "a finished decoder reads nothing more");
                assert!(
                    consumed >= out.len() + 5,
                    "a chunked body has at least `0` CRLF CRLF of framing"
                );
                return ChunkedRun {
                    data: out,
                    end: ChunkedEnd::End { consumed },
                };
            }
            Ok(Decoded::NeedData) => {
                assert!(!decoder.is_done());
                if fed == data.len() {
                    return ChunkedRun {
                        data: out,
                        end: ChunkedEnd::NeedData,
                    };
                }
                let next = fed.saturating_add(step).min(data.len());
                buf.extend_from_slice(&data[fed..next]);
                fed = next;
            }
            Err(e) => {
                check_error(e);
                return ChunkedRun {
                    data: out,
                    end: ChunkedEnd::Error(e),
                };
            }
        }
        assert!(
            out.len() <= fed,
            "{} body bytes out of {fed} bytes in",
            out.len()
        );
    }
}

/// The chunked decoder on arbitrary bytes: whole and byte-by-byte agree on the data, on where
/// the body ends and on the error; data out never exceeds bytes in.
pub fn check_chunked(data: &[u8]) {
    for limits in limit_sets() {
        let whole = decode_chunked(data, usize::MAX, &limits);
        assert!(whole.data.len() <= data.len());
        let bytewise = decode_chunked(data, 1, &limits);
        assert_eq!(whole, bytewise, "whole vs byte-by-byte with {limits:?}");
        if let ChunkedEnd::End { consumed } = whole.end {
            assert!(consumed <= data.len());
        }
    }
}
