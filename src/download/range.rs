//! `Range: bytes=…` for downloads (RFC 9110 §14): one range is served as 206; several ranges,
//! or a header that does not parse, are answered whole (200), which the RFC allows.

/// What to send for a `Range` header against a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeDecision {
    /// The whole representation (no, invalid, or multi-range header).
    Full,
    /// Bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// No byte of the range exists: 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Decides on `value` (the `Range` field value) for a body of `len` bytes.
pub fn decide(value: &[u8], len: u64) -> RangeDecision {
    let Some(spec) = strip_unit(value) else {
        return RangeDecision::Full;
    };
    if spec.contains(&b',') {
        return RangeDecision::Full;
    }
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeDecision::Full;
    };
    let (first, last) = (trim(&spec[..dash]), trim(&spec[dash + 1..]));
    match (number(first), number(last)) {
        // bytes=-N: the last N bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || len == 0 {
                RangeDecision::Unsatisfiable
            } else {
                RangeDecision::Partial {
                    start: len.saturating_sub(n),
                    end: len - 1,
                }
            }
        }
        // bytes=A-: from A to the end.
        (Some(a), None) if last.is_empty() => {
            if a >= len {
                RangeDecision::Unsatisfiable
            } else {
                RangeDecision::Partial {
                    start: a,
                    end: len - 1,
                }
            }
        }
        // bytes=A-B.
        (Some(a), Some(b)) if a <= b => {
            if a >= len {
                RangeDecision::Unsatisfiable
            } else {
                RangeDecision::Partial {
                    start: a,
                    end: b.min(len - 1),
                }
            }
        }
        _ => RangeDecision::Full,
    }
}

fn strip_unit(value: &[u8]) -> Option<&[u8]> {
    let v = trim(value);
    if v.len() > 6 && v[..6].eq_ignore_ascii_case(b"bytes=") {
        Some(&v[6..])
    } else {
        None
    }
}

fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::{decide, RangeDecision::*};

    #[test]
    fn single_ranges_suffixes_and_open_ends() {
        let cases: &[(&str, u64, super::RangeDecision)] = &[
            ("bytes=0-0", 10, Partial { start: 0, end: 0 }),
            ("bytes=2-5", 10, Partial { start: 2, end: 5 }),
            ("bytes=2-500", 10, Partial { start: 2, end: 9 }),
            ("bytes=7-", 10, Partial { start: 7, end: 9 }),
            ("bytes=-3", 10, Partial { start: 7, end: 9 }),
            ("bytes=-30", 10, Partial { start: 0, end: 9 }),
            ("BYTES= 1 - 2 ", 10, Partial { start: 1, end: 2 }),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=10-20", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=5-2", 10, Full),
            ("bytes=0-1,3-4", 10, Full),
            ("bytes=a-b", 10, Full),
            ("items=0-1", 10, Full),
            ("bytes=", 10, Full),
            ("bytes=-", 10, Full),
            ("bytes=99999999999999999999-", 10, Full),
        ];
        for (value, len, want) in cases {
            assert_eq!(decide(value.as_bytes(), *len), *want, "{value} of {len}");
        }
    }
}
