//! (e) `multipart/form-data`: (1) any split of a generated valid form — random boundary,
//! preamble, transport padding, header-name case, names and file names with `"`, CR, LF,
//! backslashes and UTF-8 (quoted as browsers and urllib3 write them, or as `filename*`), body
//! bytes with CRLFs and dashes, an epilogue — yields exactly its parts: names, file names,
//! content types and body bytes; (2) a line that looks like the boundary but is not exactly
//! `CRLF--boundary` then CRLF or `--` (`--boundaryX`, `--boundar`, no CRLF before it, a bare LF
//! or CR before it, a CR without LF after it, a case change) inside file data is kept as data,
//! byte for byte, wherever the input is cut; (3) arbitrary bytes, form-shaped garbage and valid
//! forms with one byte changed never panic, and whole, split and byte-by-byte runs agree
//! (`check::check_multipart_with` asserts it). Runs up to 4 KiB are also fed byte by byte.
//! (4) Moving any window of a file part's bytes past the parser (as the node splices a large
//! file's middle) and checking them in place (`release_body`, `find_delimiter`) gives the same
//! file, and a delimiter line inside the window is always found.

use proptest::prelude::*;
use proptest::sample::select;
use upgate::http::check::{
    check_multipart, check_multipart_with, moved_run, MultipartOutcome, MultipartStep,
};
use upgate::http::{MultipartParser, PartHead, MAX_PARTS, MAX_TRANSPORT_PADDING};

use crate::model::cuts;

const BCHARS: &[u8] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ";

/// Characters of names: the ones browsers escape, backslash, `%` (but no `0` or `2`, so no
/// accidental `%22`/`%0D`/`%0A`), separators and UTF-8.
const NAME_CHARS: &[char] = &[
    'a', 'b', 'f', 'i', 'l', 'e', 'k', 'y', '1', '3', '%', ' ', '"', '\\', '\r', '\n', '\t', ';',
    '=', '\u{e9}', '\u{6587}', '-', '_', '.', '\'', '/',
];

fn boundary() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"AaB03x".to_vec()),
        Just(b"----WebKitFormBoundaryePkpFF7tjBAqx29L".to_vec()),
        Just(b"------------------------V2ymHFg03ehbqgZCaKO6jy".to_vec()),
        prop::collection::vec(select(BCHARS), 1..=70)
            .prop_filter("no trailing space", |b| b.last() != Some(&b' ')),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(select(NAME_CHARS), 0..12).prop_map(|c| c.into_iter().collect())
}

/// How a file name is written.
#[derive(Debug, Clone)]
enum FileName {
    Quoted,
    Ext,
    /// `filename="fallback"` and `filename*`, which wins.
    Both,
}

#[derive(Debug, Clone)]
struct Part {
    name: String,
    filename: Option<(String, FileName)>,
    content_type: Option<&'static str>,
    data: Vec<u8>,
    disposition_case: usize,
    extra_header: bool,
    padding: String,
}

impl Part {
    fn head(&self) -> PartHead {
        PartHead {
            name: self.name.clone(),
            filename: self.filename.as_ref().map(|(f, _)| f.clone()),
            content_type: self.content_type.map(String::from),
        }
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        let header = [
            "Content-Disposition",
            "content-disposition",
            "CONTENT-DISPOSITION",
        ][self.disposition_case % 3];
        out.extend_from_slice(
            format!("{header}: form-data; name=\"{}\"", quote(&self.name)).as_bytes(),
        );
        match &self.filename {
            None => {}
            Some((f, FileName::Quoted)) => {
                out.extend_from_slice(format!("; filename=\"{}\"", quote(f)).as_bytes())
            }
            Some((f, FileName::Ext)) => {
                out.extend_from_slice(format!("; filename*=UTF-8''{}", ext(f)).as_bytes())
            }
            Some((f, FileName::Both)) => out.extend_from_slice(
                format!("; filename=\"fallback.bin\"; filename*=utf-8'en'{}", ext(f)).as_bytes(),
            ),
        }
        out.extend_from_slice(b"\r\n");
        if let Some(ct) = self.content_type {
            out.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        if self.extra_header {
            out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// A name inside quotes as a browser writes it (`%22`, `%0D`, `%0A`), with backslashes
/// escaped as urllib3 does.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// RFC 8187 value-chars.
fn ext(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Form {
    boundary: Vec<u8>,
    preamble: Vec<u8>,
    parts: Vec<Part>,
    epilogue: Option<Vec<u8>>,
}

impl Form {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.preamble.clone();
        if !out.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"--");
            out.extend_from_slice(&self.boundary);
            out.extend_from_slice(part.padding.as_bytes());
            out.extend_from_slice(b"\r\n");
            part.encode_head(&mut out);
            out.extend_from_slice(&part.data);
        }
        if !self.parts.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(&self.boundary);
        out.extend_from_slice(b"--");
        if let Some(epilogue) = &self.epilogue {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(epilogue);
        }
        out
    }

    fn steps(&self) -> Vec<MultipartStep> {
        let mut steps = Vec::new();
        for part in &self.parts {
            steps.push(MultipartStep::PartStart(part.head()));
            if !part.data.is_empty() {
                steps.push(MultipartStep::Data(part.data.clone()));
            }
            steps.push(MultipartStep::PartEnd);
        }
        steps.push(MultipartStep::End);
        steps
    }

    /// No part's body, followed by its delimiter, holds a delimiter line before it (the
    /// generator may build one by chance; a reading independent of the parser's).
    fn is_valid(&self) -> bool {
        self.parts.iter().all(|p| {
            let mut bytes = p.data.clone();
            bytes.extend_from_slice(b"\r\n--");
            bytes.extend_from_slice(&self.boundary);
            bytes.extend_from_slice(b"--");
            first_delimiter(&bytes, &self.boundary) == Some(p.data.len())
        })
    }
}

/// Where the first `CRLF--boundary` followed by `--`, or by padding and CRLF, starts (more
/// padding than allowed counts too: the parser refuses it).
fn first_delimiter(bytes: &[u8], boundary: &[u8]) -> Option<usize> {
    let mut delimiter = b"\r\n--".to_vec();
    delimiter.extend_from_slice(boundary);
    (0..bytes.len()).find(|&i| {
        let Some(after) = bytes[i..].strip_prefix(&delimiter[..]) else {
            return false;
        };
        let pad = after
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        after.starts_with(b"--") || pad > MAX_TRANSPORT_PADDING || after[pad..].starts_with(b"\r\n")
    })
}

/// Body bytes made of pieces that are hard for a delimiter search: CRLFs, dashes, the
/// boundary itself, random bytes.
fn data(boundary: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let mut near = b"\r\n--".to_vec();
    near.extend_from_slice(&boundary);
    near.push(b'X');
    let piece = prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(b"\r\n".to_vec()),
        1 => Just(b"--".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(boundary),
        1 => Just(near),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

fn part(boundary: Vec<u8>) -> impl Strategy<Value = Part> {
    let filename = prop_oneof![
        Just(None),
        (
            name(),
            prop_oneof![
                Just(FileName::Quoted),
                Just(FileName::Ext),
                Just(FileName::Both)
            ]
        )
            .prop_map(Some),
    ];
    let content_type = select(vec![
        None,
        Some("text/plain"),
        Some("application/octet-stream"),
        Some("image/png"),
        Some("text/plain; charset=utf-8"),
    ]);
    let padding = select(vec!["", "", " ", "\t ", "   "]);
    (
        name(),
        filename,
        content_type,
        data(boundary),
        0..3usize,
        any::<bool>(),
        padding,
    )
        .prop_map(
            |(name, filename, content_type, data, disposition_case, extra_header, padding)| Part {
                name,
                filename,
                content_type,
                data,
                disposition_case,
                extra_header,
                padding: padding.to_string(),
            },
        )
}

fn form() -> impl Strategy<Value = Form> {
    boundary().prop_flat_map(|b| {
        let preamble = prop::collection::vec(select(&b"abc \r\n"[..]), 0..30);
        let epilogue = prop::option::of(prop::collection::vec(any::<u8>(), 0..30));
        (
            Just(b.clone()),
            preamble,
            prop::collection::vec(part(b), 0..5),
            epilogue,
        )
            .prop_map(|(boundary, preamble, parts, epilogue)| Form {
                boundary,
                preamble,
                parts,
                epilogue,
            })
    })
}

/// Bytes that look like a delimiter but are not one (`b` is the boundary).
fn near_misses(b: &[u8]) -> Vec<Vec<u8>> {
    let cat = |pieces: &[&[u8]]| pieces.concat();
    let mut flipped = b.to_vec();
    if let Some(c) = flipped.iter_mut().find(|c| c.is_ascii_alphabetic()) {
        *c ^= 0x20;
    }
    let mut all = vec![
        cat(&[b"\r\n--", b, b"X"]),
        cat(&[b"\r\n--", b, b"-X"]),
        cat(&[b"\r\n--", b, b"\rX"]),
        cat(&[b"\r\n--", b, b" \t X\r\n"]),
        cat(&[b"--", b, b"\r\n"]),
        cat(&[b"x--", b, b"--"]),
        cat(&[b"\n--", b, b"\r\n"]),
        cat(&[b"\r--", b, b"\r\n"]),
        cat(&[b"\r\n-", b, b"\r\n"]),
        cat(&[b"\r\n--", &b[..b.len() - 1], b"\r\n"]),
    ];
    if flipped != b {
        all.push(cat(&[b"\r\n--", &flipped, b"\r\n"]));
    }
    all
}

proptest! {
    #![proptest_config(crate::config(128))]

    #[test]
    fn a_file_parts_bytes_moved_past_the_parser_and_checked_give_the_same_file(
        boundary in boundary(),
        data in prop::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'-'), any::<u8>()], 0..600),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        window in any::<(prop::sample::Index, prop::sample::Index)>(),
        real in any::<bool>(),
    ) {
        // File data with a near miss (data) or a real delimiter line (which ends the part).
        let misses = near_misses(&boundary);
        let mut line = misses[which.index(misses.len())].clone();
        if real {
            line = [b"\r\n--".as_slice(), &boundary, b"\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"].concat();
        }
        let cut = at.index(data.len() + 1);
        let data = [&data[..cut], &line, &data[cut..]].concat();
        let mut wire = b"--".to_vec();
        wire.extend_from_slice(&boundary);
        wire.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n");
        let start = wire.len();
        wire.extend_from_slice(&data);
        wire.extend_from_slice(b"\r\n--");
        wire.extend_from_slice(&boundary);
        wire.extend_from_slice(b"--\r\n");
        let (x, y) = (window.0.index(data.len() + 1), window.1.index(data.len() + 1));
        let (a, b) = (start + x.min(y), start + x.max(y));
        let whole = first_delimiter(&data, &boundary);
        let Some((moved, found, _)) = moved_run(&wire, &boundary, a, b) else {
            // Not inside the file's body at `a`: only possible after a real delimiter.
            prop_assert!(whole.is_some());
            return Ok(());
        };
        match whole {
            // No delimiter in the file: the check finds none and the file is the same.
            None => {
                prop_assert!(!found);
                prop_assert_eq!(moved, data);
            }
            // One that lies wholly inside the window (with the released bytes): found.
            Some(d) if start + d >= a && start + d + boundary.len() + 6 <= b => prop_assert!(found),
            Some(_) => {}
        }
    }

    #[test]
    fn the_in_place_search_finds_the_first_delimiter_line_in_any_bytes(
        (boundary, chunks) in boundary().prop_flat_map(|b| (Just(b.clone()), prop::collection::vec(data(b), 1..24))),
        skip in 0usize..70,
    ) {
        // Long enough for the vector search (and its tail), with the hard pieces anywhere.
        let bytes = chunks.concat();
        let bytes = &bytes[skip.min(bytes.len())..];
        let whole = first_delimiter(bytes, &boundary);
        match MultipartParser::new(&boundary).find_delimiter(bytes) {
            Ok(found) => prop_assert_eq!(found, whole),
            // Too much padding after a whole delimiter: a line the parser refuses.
            Err(_) => prop_assert!(whole.is_some()),
        }
    }

    #[test]
    fn any_split_of_a_valid_form_gives_its_parts(
        form in form(),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        prop_assume!(form.is_valid());
        let wire = form.encode();
        let run = check_multipart_with(&wire, &form.boundary, &cuts(&idx, wire.len()));
        prop_assert_eq!(run.outcome, MultipartOutcome::Complete);
        prop_assert_eq!(run.steps, form.steps());
    }

    #[test]
    fn boundary_like_lines_inside_file_data_are_data(
        boundary in boundary(),
        prefix in prop::collection::vec(any::<u8>(), 0..40),
        which in any::<prop::sample::Index>(),
        suffix in prop::collection::vec(any::<u8>(), 0..40),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let misses = near_misses(&boundary);
        let data = [&prefix[..], &misses[which.index(misses.len())], &suffix].concat();
        let form = Form {
            boundary: boundary.clone(),
            preamble: Vec::new(),
            parts: vec![Part {
                name: "file".into(),
                filename: Some(("data.bin".into(), FileName::Quoted)),
                content_type: Some("application/octet-stream"),
                data: data.clone(),
                disposition_case: 0,
                extra_header: false,
                padding: String::new(),
            }],
            epilogue: None,
        };
        prop_assume!(form.is_valid());
        let wire = form.encode();
        let run = check_multipart_with(&wire, &boundary, &cuts(&idx, wire.len()));
        prop_assert_eq!(run.outcome, MultipartOutcome::Complete);
        let parts = run.parts();
        prop_assert_eq!(parts.len(), 1);
        prop_assert_eq!(&parts[0].1, &data);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_every_split_agrees(
        input in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        check_multipart(&input);
    }

    #[test]
    fn form_shaped_garbage_never_panics_and_every_split_agrees(
        pieces in prop::collection::vec(prop_oneof![
            4 => select(vec![
                &b"--AaB03x"[..], b"\r\n", b"\r", b"\n", b"--", b" ", b"\t", b"\"", b";",
                b"Content-Disposition: form-data; name=\"a\"",
                b"content-disposition:form-data;name=b;filename=c",
                b"; filename*=UTF-8''%E6%96%87", b"%22", b"%0D", b"\\", b"Content-Type: text/plain",
                b"Content-Type: x", b"\r\n\r\n", b"\r\n--AaB03x\r\n", b"\r\n--AaB03x--", b"data",
            ]).prop_map(|p| p.to_vec()),
            1 => any::<u8>().prop_map(|b| vec![b]),
        ], 0..60),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let body = pieces.concat();
        let run = check_multipart_with(&body, b"AaB03x", &cuts(&idx, body.len()));
        let starts = run.steps.iter().filter(|s| matches!(s, MultipartStep::PartStart(_))).count();
        prop_assert!(starts <= MAX_PARTS);
    }

    #[test]
    fn a_valid_form_with_one_byte_changed_never_panics_and_every_split_agrees(
        form in form(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        how in 0..3u8,
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        prop_assume!(form.is_valid());
        let mut wire = form.encode();
        let i = at.index(wire.len() + 1);
        match how {
            0 if i < wire.len() => wire[i] = byte,
            1 => wire.insert(i, byte),
            _ if i < wire.len() => { wire.remove(i); }
            _ => wire.push(byte),
        }
        let run = check_multipart_with(&wire, &form.boundary, &cuts(&idx, wire.len()));
        // One changed byte can lose the close delimiter or break a header, but a complete
        // run still ends in End.
        if run.outcome == MultipartOutcome::Complete {
            prop_assert_eq!(run.steps.last(), Some(&MultipartStep::End));
        }
    }
}
