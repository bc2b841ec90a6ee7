use super::*;
use ProtocolError::*;

/// The decoded body and the bytes left after it (the next pipelined message).
type Want = Result<(&'static [u8], &'static [u8]), ProtocolError>;

/// Decodes all of `input` fed at once: the body, what is left, or the error.
fn whole(
    mut decoder: BodyDecoder,
    input: &[u8],
    limits: &Limits,
) -> Result<(Vec<u8>, Vec<u8>), ProtocolError> {
    let mut buf = BytesMut::from(input);
    let mut body = Vec::new();
    loop {
        match decoder.decode(&mut buf, limits)? {
            Decoded::Data(d) => {
                assert!(!d.is_empty(), "Data is never empty");
                body.extend_from_slice(&d);
            }
            Decoded::End => {
                assert!(decoder.is_done());
                // End is sticky and consumes nothing more.
                assert_eq!(decoder.decode(&mut buf, limits), Ok(Decoded::End));
                return Ok((body, buf.to_vec()));
            }
            Decoded::NeedData => panic!(
                "input ended inside the body: {:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }
}

/// The same, fed one byte at a time; bytes after the end are appended once the body is done.
fn bytewise(
    mut decoder: BodyDecoder,
    input: &[u8],
    limits: &Limits,
) -> Result<(Vec<u8>, Vec<u8>), ProtocolError> {
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut fed = 0;
    loop {
        match decoder.decode(&mut buf, limits)? {
            Decoded::Data(d) => body.extend_from_slice(&d),
            Decoded::End => {
                buf.extend_from_slice(&input[fed..]);
                return Ok((body, buf.to_vec()));
            }
            Decoded::NeedData => {
                assert!(
                    fed < input.len(),
                    "input ended inside the body: {:?}",
                    String::from_utf8_lossy(input)
                );
                buf.extend_from_slice(&input[fed..fed + 1]);
                fed += 1;
            }
        }
    }
}

fn check_chunked(cases: &[(&str, &[u8], Want)], limits: &Limits) {
    for (name, input, want) in cases {
        let want = want.map(|(b, r)| (b.to_vec(), r.to_vec()));
        assert_eq!(
            whole(BodyDecoder::chunked(), input, limits),
            want,
            "{name} (whole)"
        );
        assert_eq!(
            bytewise(BodyDecoder::chunked(), input, limits),
            want,
            "{name} (byte by byte)"
        );
    }
}

const CHUNKED_CASES: &[(&str, &[u8], Want)] = &[
    ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", Ok((b"hello", b""))),
    ("empty body", b"0\r\n\r\n", Ok((b"", b""))),
    (
        "two chunks",
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        Ok((b"hello world", b"")),
    ),
    (
        "upper-case hex",
        b"A\r\n0123456789\r\n0\r\n\r\n",
        Ok((b"0123456789", b"")),
    ),
    (
        "lower-case hex",
        b"a\r\n0123456789\r\n0\r\n\r\n",
        Ok((b"0123456789", b"")),
    ),
    (
        "leading zeros",
        b"0005\r\nhello\r\n000\r\n\r\n",
        Ok((b"hello", b"")),
    ),
    (
        "many leading zeros",
        b"00000000000000000000005\r\nhello\r\n0\r\n\r\n",
        Ok((b"hello", b"")),
    ),
    (
        "data holding CRLF",
        b"4\r\n\r\n\r\n\r\n0\r\n\r\n",
        Ok((b"\r\n\r\n", b"")),
    ),
    (
        "next message stays",
        b"1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
        Ok((b"a", b"GET / HTTP/1.1\r\n")),
    ),
    // Extensions are skipped
    (
        "extension",
        b"5;name=value\r\nhello\r\n0\r\n\r\n",
        Ok((b"hello", b"")),
    ),
    (
        "extension without value",
        b"5;ext\r\nhello\r\n0\r\n\r\n",
        Ok((b"hello", b"")),
    ),
    (
        "several extensions",
        b"5;a=1;b=\"x y\"\r\nhello\r\n0\r\n\r\n",
        Ok((b"hello", b"")),
    ),
    (
        "whitespace before extension",
        b"5 \t;a=1\r\nhello\r\n0\r\n\r\n",
        Ok((b"hello", b"")),
    ),
    (
        "extension on last chunk",
        b"5\r\nhello\r\n0;end\r\n\r\n",
        Ok((b"hello", b"")),
    ),
    (
        "tab in extension",
        b"5;a=\tb\r\nhello\r\n0\r\n\r\n",
        Ok((b"hello", b"")),
    ),
    // Trailers are parsed, then dropped
    (
        "trailer",
        b"5\r\nhello\r\n0\r\nX-Sum: abc\r\n\r\n",
        Ok((b"hello", b"")),
    ),
    (
        "two trailers",
        b"0\r\nA: 1\r\nB:2\r\n\r\nNEXT",
        Ok((b"", b"NEXT")),
    ),
    ("empty trailer value", b"0\r\nA:\r\n\r\n", Ok((b"", b""))),
    // Chunk sizes
    ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n", Err(BadChunkSize)),
    ("0X prefix", b"0X5\r\nhello\r\n0\r\n\r\n", Err(BadChunkSize)),
    (
        "empty size line",
        b"\r\nhello\r\n0\r\n\r\n",
        Err(BadChunkSize),
    ),
    ("not hex", b"g\r\nhello\r\n0\r\n\r\n", Err(BadChunkSize)),
    (
        "hex then garbage",
        b"5g\r\nhello\r\n0\r\n\r\n",
        Err(BadChunkSize),
    ),
    ("negative", b"-5\r\nhello\r\n0\r\n\r\n", Err(BadChunkSize)),
    ("plus sign", b"+5\r\nhello\r\n0\r\n\r\n", Err(BadChunkSize)),
    (
        "leading space",
        b" 5\r\nhello\r\n0\r\n\r\n",
        Err(BadChunkSize),
    ),
    (
        "trailing space without extension",
        b"5 \r\nhello\r\n0\r\n\r\n",
        Err(BadChunkSize),
    ),
    (
        "space inside size",
        b"5 5\r\nhello\r\n0\r\n\r\n",
        Err(BadChunkSize),
    ),
    (
        "control byte in extension",
        b"5;a\x01b\r\nhello\r\n0\r\n\r\n",
        Err(BadChunkSize),
    ),
    (
        "NUL in extension",
        b"5;a\0\r\nhello\r\n0\r\n\r\n",
        Err(BadChunkSize),
    ),
    (
        "DEL in extension",
        b"5;a\x7f\r\nhello\r\n0\r\n\r\n",
        Err(BadChunkSize),
    ),
    (
        "bare CR in size line",
        b"5\rx\r\nhello\r\n0\r\n\r\n",
        Err(BadChunkSize),
    ),
    (
        "17 hex digits overflow",
        b"10000000000000000\r\n",
        Err(ChunkSizeOverflow),
    ),
    (
        "20 f overflow",
        b"ffffffffffffffffffff\r\n",
        Err(ChunkSizeOverflow),
    ),
    // Line ends
    (
        "bare LF after size",
        b"5\nhello\r\n0\r\n\r\n",
        Err(BadLineEnding),
    ),
    (
        "bare LF after last chunk",
        b"5\r\nhello\r\n0\n\r\n",
        Err(BadLineEnding),
    ),
    (
        "bare LF in trailers",
        b"0\r\nX: a\n\r\n",
        Err(BadLineEnding),
    ),
    ("bare LF ends trailers", b"0\r\n\n", Err(BadLineEnding)),
    // Chunk data must end with CRLF
    (
        "data longer than size",
        b"3\r\nhello\r\n0\r\n\r\n",
        Err(BadChunkEnd),
    ),
    ("LF after data", b"5\r\nhello\n0\r\n\r\n", Err(BadChunkEnd)),
    (
        "CR then garbage after data",
        b"5\r\nhelloxx",
        Err(BadChunkEnd),
    ),
    (
        "CR without LF after data",
        b"5\r\nhello\rx0\r\n\r\n",
        Err(BadChunkEnd),
    ),
    // Trailer fields
    (
        "trailer without colon",
        b"0\r\nnocolon\r\n\r\n",
        Err(BadTrailer),
    ),
    ("trailer empty name", b"0\r\n: a\r\n\r\n", Err(BadTrailer)),
    (
        "trailer folded",
        b"0\r\nA: 1\r\n b\r\n\r\n",
        Err(BadTrailer),
    ),
    (
        "trailer space before colon",
        b"0\r\nA : 1\r\n\r\n",
        Err(BadTrailer),
    ),
    (
        "trailer NUL in name",
        b"0\r\nA\0: 1\r\n\r\n",
        Err(BadTrailer),
    ),
    (
        "trailer control byte in value",
        b"0\r\nA: 1\x01\r\n\r\n",
        Err(BadTrailer),
    ),
    (
        "trailer DEL in value",
        b"0\r\nA: \x7f\r\n\r\n",
        Err(BadTrailer),
    ),
];

#[test]
fn chunked_rules() {
    check_chunked(CHUNKED_CASES, &Limits::default());
}

#[test]
fn chunked_line_and_trailer_limits() {
    let limits = Limits {
        max_chunk_line_bytes: 8,
        max_trailer_bytes: 16,
        ..Limits::default()
    };
    check_chunked(
        &[
            (
                "size line at the limit",
                b"5;abcdef\r\nhello\r\n0\r\n\r\n",
                Ok((b"hello", b"")),
            ),
            (
                "size line over the limit",
                b"5;abcdefg\r\nhello\r\n0\r\n\r\n",
                Err(ChunkLineTooLong),
            ),
            (
                "size line never ends",
                b"5;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                Err(ChunkLineTooLong),
            ),
            (
                "endless zeros",
                b"000000000000000000000000000000000000000000000000",
                Err(ChunkLineTooLong),
            ),
            // Trailer field lines, CRLFs included, may take exactly max_trailer_bytes.
            (
                "one trailer at the limit",
                b"0\r\nA: 12345678901\r\n\r\n",
                Ok((b"", b"")),
            ),
            (
                "one trailer over the limit",
                b"0\r\nA: 123456789012\r\n\r\n",
                Err(TrailersTooLarge),
            ),
            (
                "trailers at the limit",
                b"0\r\nA:1\r\nB:2\r\nC:34\r\n\r\n",
                Ok((b"", b"")),
            ),
            (
                "trailers over the limit",
                b"0\r\nA:1\r\nB:2\r\nC:345\r\n\r\n",
                Err(TrailersTooLarge),
            ),
            (
                "many small trailers",
                b"0\r\nA:1\r\nB:2\r\nC:3\r\nD:4\r\n\r\n",
                Err(TrailersTooLarge),
            ),
            (
                "trailer never ends",
                b"0\r\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                Err(TrailersTooLarge),
            ),
        ],
        &limits,
    );
    let no_trailers = Limits {
        max_trailer_bytes: 0,
        ..Limits::default()
    };
    check_chunked(
        &[
            (
                "no trailers allowed, none sent",
                b"1\r\na\r\n0\r\n\r\n",
                Ok((b"a", b"")),
            ),
            (
                "no trailers allowed, one sent",
                b"0\r\nA:1\r\n\r\n",
                Err(TrailersTooLarge),
            ),
        ],
        &no_trailers,
    );
    assert_eq!(TrailersTooLarge.status(), 431);
    assert_eq!(ChunkLineTooLong.status(), 400);
}

#[test]
fn chunk_size_parsing() {
    let cases: &[(&[u8], Result<u64, ProtocolError>)] = &[
        (b"0", Ok(0)),
        (b"f", Ok(15)),
        (b"F", Ok(15)),
        (b"10", Ok(16)),
        (b"ffffffffffffffff", Ok(u64::MAX)),
        (b"0000ffffffffffffffff", Ok(u64::MAX)),
        (b"10000000000000000", Err(ChunkSizeOverflow)),
        (b"1;x", Ok(1)),
        (b"1 ;x", Ok(1)),
        (b"", Err(BadChunkSize)),
        (b"x", Err(BadChunkSize)),
        (b"1 ", Err(BadChunkSize)),
        (b"0x1", Err(BadChunkSize)),
    ];
    for (line, want) in cases {
        assert_eq!(
            &parse_chunk_size(line),
            want,
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

/// A chunk larger than what arrived: data comes out as it arrives and the decoder waits.
#[test]
fn chunked_data_streams_as_it_arrives() {
    let limits = Limits::default();
    let mut d = BodyDecoder::chunked();
    let mut buf = BytesMut::from(&b"a\r\n0123"[..]);
    assert_eq!(
        d.decode(&mut buf, &limits),
        Ok(Decoded::Data(Bytes::from_static(b"0123")))
    );
    assert_eq!(d, BodyDecoder::Chunked(ChunkedState::Data { remaining: 6 }));
    assert_eq!(d.decode(&mut buf, &limits), Ok(Decoded::NeedData));
    buf.extend_from_slice(b"456789\r");
    assert_eq!(
        d.decode(&mut buf, &limits),
        Ok(Decoded::Data(Bytes::from_static(b"456789")))
    );
    assert_eq!(
        d.decode(&mut buf, &limits),
        Ok(Decoded::NeedData),
        "CR alone may still be CRLF"
    );
    buf.extend_from_slice(b"\n0\r\n\r");
    assert_eq!(d.decode(&mut buf, &limits), Ok(Decoded::NeedData));
    assert!(!d.is_done());
    buf.extend_from_slice(b"\n");
    assert_eq!(d.decode(&mut buf, &limits), Ok(Decoded::End));
    assert!(d.is_done());
    assert!(buf.is_empty());
}

/// Data is a view of the read buffer, not a copy.
#[test]
fn data_is_split_off_the_buffer() {
    let limits = Limits::default();
    for mut d in [BodyDecoder::length(5), BodyDecoder::chunked()] {
        let input: &[u8] = if d == BodyDecoder::length(5) {
            b"hello"
        } else {
            b"5\r\nhello\r\n"
        };
        let mut buf = BytesMut::from(input);
        let start = buf.as_ptr() as usize;
        let Ok(Decoded::Data(data)) = d.decode(&mut buf, &limits) else {
            panic!("no data from {d:?}");
        };
        assert_eq!(&data[..], b"hello");
        let at = data.as_ptr() as usize;
        assert!(
            at >= start && at < start + input.len(),
            "{d:?} copied its data"
        );
    }
}

#[test]
fn length_decoder() {
    let limits = Limits::default();
    let cases: &[(&str, u64, &[u8], Want)] = &[
        ("zero", 0, b"", Ok((b"", b""))),
        ("zero leaves the next message", 0, b"GET", Ok((b"", b"GET"))),
        ("exact", 5, b"hello", Ok((b"hello", b""))),
        (
            "next message stays",
            5,
            b"helloGET / HTTP/1.1\r\n",
            Ok((b"hello", b"GET / HTTP/1.1\r\n")),
        ),
        (
            "body bytes are opaque",
            4,
            b"\r\n\0\n",
            Ok((b"\r\n\0\n", b"")),
        ),
    ];
    for (name, n, input, want) in cases {
        let want = want.map(|(b, r)| (b.to_vec(), r.to_vec()));
        assert_eq!(
            whole(BodyDecoder::length(*n), input, &limits),
            want,
            "{name} (whole)"
        );
        assert_eq!(
            bytewise(BodyDecoder::length(*n), input, &limits),
            want,
            "{name} (byte by byte)"
        );
    }
    // Waiting for the rest: NeedData, and nothing more than `remaining` is ever taken.
    let mut d = BodyDecoder::length(10);
    let mut buf = BytesMut::from(&b"abc"[..]);
    assert_eq!(
        d.decode(&mut buf, &limits),
        Ok(Decoded::Data(Bytes::from_static(b"abc")))
    );
    assert_eq!(d, BodyDecoder::Length { remaining: 7 });
    assert_eq!(d.decode(&mut buf, &limits), Ok(Decoded::NeedData));
    assert!(!d.is_done());
    // A huge declared length never makes the decoder allocate or over-read.
    let mut d = BodyDecoder::length(u64::MAX);
    let mut buf = BytesMut::from(&b"xyz"[..]);
    assert_eq!(
        d.decode(&mut buf, &limits),
        Ok(Decoded::Data(Bytes::from_static(b"xyz")))
    );
    assert_eq!(
        d,
        BodyDecoder::Length {
            remaining: u64::MAX - 3
        }
    );
}

/// A huge chunk size is fine to announce: data comes out only as it arrives.
#[test]
fn huge_chunk_size_does_not_over_read() {
    let limits = Limits::default();
    let mut d = BodyDecoder::chunked();
    let mut buf = BytesMut::from(&b"ffffffffffffffff\r\nabc"[..]);
    assert_eq!(
        d.decode(&mut buf, &limits),
        Ok(Decoded::Data(Bytes::from_static(b"abc")))
    );
    assert_eq!(
        d,
        BodyDecoder::Chunked(ChunkedState::Data {
            remaining: u64::MAX - 3
        })
    );
    assert_eq!(d.decode(&mut buf, &limits), Ok(Decoded::NeedData));
}

#[test]
fn chunked_errors_are_400() {
    for e in [
        BadChunkSize,
        ChunkSizeOverflow,
        ChunkLineTooLong,
        BadChunkEnd,
        BadTrailer,
        BadLineEnding,
        IncompleteBody,
    ] {
        assert_eq!(e.status(), 400, "{e:?}");
    }
    assert_eq!(ChunkSizeOverflow.code(), "chunk_size_overflow");
    assert_eq!(BadChunkSize.code(), "bad_chunk_size");
}

/// `decode_slice` gives the same verdicts as `decode` on any input: data as ranges ending at
/// the bytes used, framing consumed in the same places, the same errors.
#[test]
fn slice_decoding_agrees_with_buffer_decoding() {
    let limits = Limits::default();
    let inputs: &[&[u8]] = &[
        b"5\r\nhello\r\n0\r\n\r\nGET",
        b"3;ext=\"a\"\r\nabc\r\n2\r\nde\r\n0\r\nx: y\r\n\r\n",
        b"5\r\nhelloXX",
        b"zz\r\n",
        b"5\nhello",
        b"ffffffffffffffffff\r\n",
        b"1\r\na\r\n0\r\nbad trailer\r\n\r\n",
    ];
    for input in inputs {
        let mut a = BodyDecoder::chunked();
        let mut b = BodyDecoder::chunked();
        let mut buf = BytesMut::from(*input);
        let mut at = 0;
        for _ in 0..100 {
            let by_buf = a.decode(&mut buf, &limits);
            let by_slice = b.decode_slice(&input[at..], &limits);
            match (&by_buf, &by_slice) {
                (Ok(Decoded::Data(d)), Ok((used, Piece::Data(r)))) => {
                    assert_eq!(&d[..], &input[at + r.start..at + r.end]);
                    assert_eq!(*used, r.end, "data ends the step");
                    at += used;
                }
                (Ok(Decoded::NeedData), Ok((used, Piece::NeedData)))
                | (Ok(Decoded::End), Ok((used, Piece::End))) => {
                    at += used;
                    assert_eq!(&buf[..], &input[at..], "the same bytes are left");
                    break;
                }
                (Err(x), Err(y)) => {
                    assert_eq!(x, y);
                    break;
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
            }
            assert_eq!(a, b);
        }
    }
    // Length: never more than what remains.
    let mut d = BodyDecoder::length(4);
    assert_eq!(
        d.decode_slice(b"abcdef", &limits),
        Ok((4, Piece::Data(0..4)))
    );
    assert_eq!(d.decode_slice(b"ef", &limits), Ok((0, Piece::End)));
}
