//! Invariants of the `multipart/form-data` parser ([`check_multipart`]) and of
//! [`boundary_of`] ([`check_boundary_of`]).

use memchr::memmem;

use super::splits_from_prefix;
use crate::{
    boundary_of, is_boundary, is_tchar, MultipartError, MultipartEvent, MultipartParser, PartHead,
    MAX_PARTS, MAX_PART_HEADER_BYTES, MAX_TRANSPORT_PADDING,
};

/// The boundary [`check_multipart`] uses when the body does not start with one (RFC 7578's
/// example).
pub const DEFAULT_BOUNDARY: &[u8] = b"AaB03x";

/// Bodies up to this size are also fed byte by byte.
const BYTEWISE_MAX: usize = 4096;

/// One thing a parse produced; consecutive body bytes (`Data` and `Held`) are joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartStep {
    PartStart(PartHead),
    Data(Vec<u8>),
    PartEnd,
    End,
}

/// How a parse ended once the input ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultipartOutcome {
    /// The close delimiter was seen; `finish` is Ok.
    Complete,
    /// The input ended first; `finish` says `Truncated`.
    Truncated,
    Error(MultipartError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartRun {
    pub steps: Vec<MultipartStep>,
    pub outcome: MultipartOutcome,
}

impl MultipartRun {
    /// The parts' heads and joined body bytes, in order.
    pub fn parts(&self) -> Vec<(PartHead, Vec<u8>)> {
        let mut parts: Vec<(PartHead, Vec<u8>)> = Vec::new();
        for step in &self.steps {
            match step {
                MultipartStep::PartStart(head) => parts.push((head.clone(), Vec::new())),
                MultipartStep::Data(d) => parts
                    .last_mut()
                    .expect("data inside a part")
                    .1
                    .extend_from_slice(d),
                _ => {}
            }
        }
        parts
    }
}

/// Builds a [`MultipartRun`] from the events, checking their order on the way.
#[derive(Default)]
struct Recorder {
    steps: Vec<MultipartStep>,
    open: bool,
    ended: bool,
    starts: usize,
    data_out: usize,
}

impl Recorder {
    fn data(&mut self, bytes: &[u8]) {
        assert!(!bytes.is_empty(), "body bytes come in non-empty pieces");
        assert!(self.open, "body bytes outside a part");
        self.data_out += bytes.len();
        match self.steps.last_mut() {
            Some(MultipartStep::Data(d)) => d.extend_from_slice(bytes),
            _ => self.steps.push(MultipartStep::Data(bytes.to_vec())),
        }
    }

    fn event(&mut self, event: MultipartEvent) {
        assert!(!self.ended, "{event:?} after End");
        match event {
            MultipartEvent::PartStart(head) => {
                assert!(!self.open, "PartStart inside a part");
                self.open = true;
                self.starts += 1;
                self.steps.push(MultipartStep::PartStart(head));
            }
            MultipartEvent::PartEnd => {
                assert!(self.open, "PartEnd outside a part");
                self.open = false;
                self.steps.push(MultipartStep::PartEnd);
            }
            MultipartEvent::End => {
                assert!(!self.open, "End inside a part");
                self.ended = true;
                self.steps.push(MultipartStep::End);
            }
            MultipartEvent::Data(_) | MultipartEvent::Held | MultipartEvent::NeedData => {
                unreachable!("handled by the caller")
            }
        }
    }
}

/// Parses `data` with `boundary`, cut into pieces at `cuts` (any order; out-of-range cuts are
/// clamped), as the node does: each piece offered until `NeedData`, then `finish` at the end.
/// Checks every call: `used` within the input, `NeedData` only with everything used, `Data`
/// a non-empty range of what was used, `Held` non-empty and within [`MultipartParser::max_held`],
/// the parser never keeping more than [`MAX_PART_HEADER_BYTES`] or `max_held` bytes, progress
/// (no endless calls that use nothing), event order, `parts_seen`, errors sticky, `End` once
/// and only `NeedData` after it, body bytes out ≤ bytes in.
pub fn drive_multipart(data: &[u8], boundary: &[u8], cuts: &[usize]) -> MultipartRun {
    let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(data.len())).collect();
    points.push(data.len());
    points.sort_unstable();
    points.dedup();

    let mut parser = MultipartParser::new(boundary);
    let max_held = parser.max_held();
    let mut rec = Recorder::default();
    let mut start = 0;
    for end in points {
        let mut piece = &data[start..end];
        start = end;
        let mut stalls = 0;
        loop {
            let result = parser.parse(piece);
            let buffered = parser.buffered();
            assert!(
                buffered <= MAX_PART_HEADER_BYTES.max(max_held),
                "{buffered} bytes kept inside"
            );
            let (used, event) = match result {
                Ok(step) => step,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    assert_eq!(parser.parse(piece), Err(e), "errors are sticky");
                    assert_eq!(parser.parse(b"more"), Err(e), "errors are sticky");
                    assert_eq!(parser.finish(), Err(e));
                    return finish_run(rec, data, boundary, MultipartOutcome::Error(e));
                }
            };
            assert!(used <= piece.len(), "used {used} of {}", piece.len());
            match event {
                MultipartEvent::NeedData => {
                    assert_eq!(used, piece.len(), "NeedData leaves nothing unused");
                    break;
                }
                MultipartEvent::Data(range) => {
                    assert!(
                        !range.is_empty() && range.end <= used,
                        "{range:?} of {used}"
                    );
                    rec.data(&piece[range]);
                }
                MultipartEvent::Held => {
                    let held = parser.held();
                    assert!(held.len() <= max_held, "{} held", held.len());
                    rec.data(held);
                }
                MultipartEvent::End => {
                    rec.event(MultipartEvent::End);
                    assert_eq!(parser.finish(), Ok(()));
                }
                event => rec.event(event),
            }
            assert!(
                parser.held().is_empty()
                    || matches!(rec.steps.last(), Some(MultipartStep::Data(_)))
            );
            assert_eq!(parser.parts_seen(), rec.starts);
            assert!(rec.starts <= MAX_PARTS);
            assert!(
                rec.data_out <= end,
                "{} body bytes from {end}",
                rec.data_out
            );
            stalls = if used == 0 { stalls + 1 } else { 0 };
            assert!(stalls <= max_held + 2, "no progress");
            piece = &piece[used..];
        }
    }
    let outcome = if rec.ended {
        MultipartOutcome::Complete
    } else {
        assert_eq!(parser.finish(), Err(MultipartError::Truncated));
        MultipartOutcome::Truncated
    };
    finish_run(rec, data, boundary, outcome)
}

/// Checks what holds for a whole run: each part's body bytes appear in the input, in order,
/// and hold no delimiter line (an independent reading of RFC 2046 §5.1.1).
fn finish_run(
    rec: Recorder,
    data: &[u8],
    boundary: &[u8],
    outcome: MultipartOutcome,
) -> MultipartRun {
    let mut delimiter = b"\r\n--".to_vec();
    delimiter.extend_from_slice(boundary);
    let mut cursor = 0;
    for step in &rec.steps {
        let MultipartStep::Data(d) = step else {
            continue;
        };
        let at = memmem::find(&data[cursor..], d).expect("body bytes are bytes of the input");
        cursor += at + d.len();
        for i in memmem::find_iter(d, &delimiter) {
            let after = &d[i + delimiter.len()..];
            let pad = after
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count();
            let close = after.starts_with(b"--");
            let line = pad <= MAX_TRANSPORT_PADDING && after[pad..].starts_with(b"\r\n");
            assert!(!close && !line, "a delimiter line inside a part's body");
        }
    }
    MultipartRun {
        steps: rec.steps,
        outcome,
    }
}

/// The parser fed `body` whole, cut at `cuts`, and byte by byte (up to 4 KiB) gives the same
/// steps and outcome; every run holds [`drive_multipart`]'s invariants.
pub fn check_multipart_with(body: &[u8], boundary: &[u8], cuts: &[usize]) -> MultipartRun {
    let whole = drive_multipart(body, boundary, &[]);
    let split = drive_multipart(body, boundary, cuts);
    same_run(&whole, &split, &format!("whole vs cut at {cuts:?}"));
    if body.len() <= BYTEWISE_MAX {
        let every: Vec<usize> = (1..body.len()).collect();
        same_run(
            &whole,
            &drive_multipart(body, boundary, &every),
            "whole vs byte by byte",
        );
    }
    whole
}

/// Two runs of the same body agree: the same steps and outcome. When both end in the same
/// error, the part data reported before it may differ in how far it got (a run that sees more
/// at once finds the error before reporting the bytes in front of it; another reports them
/// first): an error voids the whole body, so only a prefix is required there.
fn same_run(a: &MultipartRun, b: &MultipartRun, what: &str) {
    if a.outcome != b.outcome || !matches!(a.outcome, MultipartOutcome::Error(_)) {
        assert_eq!(a, b, "{what}");
        return;
    }
    let (short, long) = if a.steps.len() <= b.steps.len() {
        (&a.steps, &b.steps)
    } else {
        (&b.steps, &a.steps)
    };
    let Some((last, front)) = short.split_last() else {
        return;
    };
    assert_eq!(
        front,
        &long[..front.len()],
        "{what}: the steps before the error differ"
    );
    match (last, &long[front.len()]) {
        (MultipartStep::Data(x), MultipartStep::Data(y)) => {
            let (x, y) = if x.len() <= y.len() { (x, y) } else { (y, x) };
            assert!(
                y.starts_with(x),
                "{what}: the data before the error differs"
            );
        }
        (x, y) => assert_eq!(x, y, "{what}: the steps before the error differ"),
    }
}

/// The boundary a fuzz input's body names on its first line (`--boundary`, a trailing `--`
/// and padding dropped), or [`DEFAULT_BOUNDARY`].
pub fn boundary_in(body: &[u8]) -> Vec<u8> {
    let line_end = memchr::memchr2(b'\r', b'\n', body).unwrap_or(body.len());
    if let Some(line) = body[..line_end].strip_prefix(b"--") {
        let line = line.strip_suffix(b"--").unwrap_or(line);
        let pad = line
            .iter()
            .rev()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let line = &line[..line.len() - pad];
        if is_boundary(line) {
            return line.to_vec();
        }
    }
    DEFAULT_BOUNDARY.to_vec()
}

/// A fuzz input: the split prefix of [`splits_from_prefix`], then a body whose first line
/// names the boundary ([`boundary_in`]). Runs [`check_multipart_with`] on the body and
/// [`check_boundary_of`] on its first line.
pub fn check_multipart(input: &[u8]) {
    let (cuts, body) = splits_from_prefix(input);
    let line_end = memchr::memchr(b'\n', body).unwrap_or(body.len());
    check_boundary_of(&body[..line_end]);
    let boundary = boundary_in(body);
    let run = check_multipart_with(body, &boundary, &cuts);
    check_moved(body, &boundary, &run, &cuts);
}

/// Moving a window of the body past the parser ([`moved_run`], what the node does with a large
/// file's middle) never yields a different file: when the in-place check finds no delimiter
/// and the body then ends properly, the last part is the one the whole run gave.
fn check_moved(body: &[u8], boundary: &[u8], whole: &MultipartRun, cuts: &[usize]) {
    let (a, b) = match cuts {
        [x, y, ..] => ((*x).min(*y), (*x).max(*y)),
        _ => (body.len() / 3, body.len() * 2 / 3),
    };
    let Some((data, found, ended)) =
        moved_run(body, boundary, a.min(body.len()), b.min(body.len()))
    else {
        return;
    };
    if found || !ended || whole.outcome != MultipartOutcome::Complete {
        return;
    }
    let last = whole.parts().pop().map(|(_, d)| d).unwrap_or_default();
    assert_eq!(data, last, "a moved window changed the last part");
}

/// The vector search of bytes checked in place ([`MultipartParser::find_delimiter`]) answers
/// what trying every CR does, over the bytes, over 32 suffixes spread along them and over each
/// of the last 96 (short haystacks take the scalar path; longer ones end in the vector loop's
/// tail).
pub fn check_find_delimiter(p: &MultipartParser, bytes: &[u8]) {
    let step = (bytes.len() / 32).max(1);
    let tail = bytes.len().saturating_sub(96);
    for from in (0..=bytes.len()).filter(|&f| f % step == 0 || f >= tail) {
        let b = &bytes[from..];
        assert_eq!(
            p.find_delimiter(b),
            p.find_delimiter_by_cr(b),
            "find_delimiter from byte {from}"
        );
    }
}

/// [`boundary_of`] never panics; a boundary it returns is valid per RFC 2046, appears as is
/// in the value, comes from a `multipart/form-data` value, and reads back the same from the
/// value written quoted (and unquoted when it is a token).
pub fn check_boundary_of(content_type: &[u8]) {
    let boundary = match boundary_of(content_type) {
        Ok(b) => b,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert!(is_boundary(&boundary), "{boundary:?}");
    assert!(memmem::find(content_type, &boundary).is_some());
    let start = content_type
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(0);
    assert!(content_type[start..]
        .get(..19)
        .is_some_and(|m| m.eq_ignore_ascii_case(b"multipart/form-data")));
    let mut quoted = b"Multipart/Form-Data; charset=utf-8; boundary=\"".to_vec();
    quoted.extend_from_slice(&boundary);
    quoted.push(b'"');
    assert_eq!(boundary_of(&quoted), Ok(boundary.clone()));
    if boundary.iter().all(|&b| is_tchar(b)) {
        let mut bare = b"multipart/form-data;boundary=".to_vec();
        bare.extend_from_slice(&boundary);
        assert_eq!(boundary_of(&bare), Ok(boundary));
    }
}

/// A run that moves part of a part body past the parser, as the node splices a large file's
/// middle: offers `wire[..a]`, releases what the parser held, moves `wire[a..b]` past it
/// (checking the released and moved bytes in place with `find_delimiter`), offers the rest,
/// the moved bytes' cut-off delimiter start (`cut_off`) first.
/// Returns the last part's bytes as the caller would hold them, whether the check found a
/// delimiter line, and whether the body then ended properly; `None` when the parser was not
/// inside a part's body at `a` (or refused the bytes before it).
pub fn moved_run(
    wire: &[u8],
    boundary: &[u8],
    a: usize,
    b: usize,
) -> Option<(Vec<u8>, bool, bool)> {
    let mut p = MultipartParser::new(boundary);
    let mut data = Vec::new();
    let offer = |p: &mut MultipartParser, mut input: &[u8], data: &mut Vec<u8>| -> bool {
        while !input.is_empty() {
            let Ok((used, ev)) = p.parse(input) else {
                return false;
            };
            match ev {
                MultipartEvent::Data(r) => data.extend_from_slice(&input[r]),
                MultipartEvent::Held => data.extend_from_slice(p.held()),
                MultipartEvent::PartStart(_) => data.clear(),
                _ => {}
            }
            input = &input[used..];
        }
        true
    };
    if !offer(&mut p, &wire[..a], &mut data) {
        return None;
    }
    let mut checked = p.release_body()?;
    checked.extend_from_slice(&wire[a..b]);
    let found = p.find_delimiter(&checked).map_or(true, |f| f.is_some());
    check_find_delimiter(&p, &checked);
    // A delimiter line cut off by the window's end goes back to the parser with what follows.
    let back = match found {
        true => 0,
        false => p.cut_off(&checked).unwrap_or(0),
    };
    let kept = checked.len() - back;
    data.extend_from_slice(&checked[..kept]);
    let mut rest = checked[kept..].to_vec();
    rest.extend_from_slice(&wire[b..]);
    let ended = offer(&mut p, &rest, &mut data) && p.finish().is_ok();
    Some((data, found, ended))
}
