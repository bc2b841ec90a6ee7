//! Structured Field Values (RFC 9651, which obsoletes RFC 8941): the Items the IETF draft's
//! fields hold (`Upload-Complete` a Boolean, `Upload-Offset`, `Upload-Length` and
//! `Upload-Draft-Interop-Version` Integers) and the Dictionary `Upload-Limit` is written as.
//! An Item may carry parameters (`?1;a=2`); they are parsed, so that a malformed one fails the
//! field, and then ignored, since the draft defines none.

use super::ows_trim;

/// The largest sf-integer: 15 digits (RFC 9651 §3.3.1).
pub const MAX_SF_INTEGER: i64 = 999_999_999_999_999;

/// An Item's bare value, as far as the draft's fields care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bare {
    Integer(i64),
    Boolean(bool),
    /// A Decimal, String, Token, Byte Sequence or Date: valid, but no field here wants one.
    Other,
}

/// Parses a whole field value as an Item (RFC 9651 §4.2, with §4.2.3): surrounding spaces
/// and tabs are dropped, the rest must be one bare item and its parameters.
pub(super) fn parse_item(value: &[u8]) -> Option<Bare> {
    let mut p = Parser {
        s: ows_trim(value),
        at: 0,
    };
    let bare = p.bare_item()?;
    p.parameters()?;
    (p.at == p.s.len()).then_some(bare)
}

/// `?1` or `?0`.
pub fn format_sf_boolean(b: bool) -> &'static str {
    if b {
        "?1"
    } else {
        "?0"
    }
}

/// A Dictionary of Integer members in the given order (RFC 9651 §4.1.2): `a=1, b=2`.
pub(super) fn format_dictionary(members: &[(&str, u64)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(key);
        out.push('=');
        out.push_str(&value.to_string());
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    /// Takes bytes while `keep` holds; returns how many.
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> usize {
        let n = self.s[self.at..].iter().take_while(|&&b| keep(b)).count();
        self.at += n;
        n
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }

    fn bare_item(&mut self) -> Option<Bare> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'?' => {
                self.at += 1;
                let b = match self.peek()? {
                    b'0' => false,
                    b'1' => true,
                    _ => return None,
                };
                self.at += 1;
                Some(Bare::Boolean(b))
            }
            b'"' => self.string().map(|()| Bare::Other),
            b':' => {
                self.at += 1;
                self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                self.eat(b':').then_some(Bare::Other)
            }
            b'@' => {
                self.at += 1;
                match self.number()? {
                    Bare::Integer(_) => Some(Bare::Other),
                    _ => None,
                }
            }
            b'*' | b'A'..=b'Z' | b'a'..=b'z' => {
                self.at += 1;
                self.take_while(|b| crate::is_tchar(b) || b == b':' || b == b'/');
                Some(Bare::Other)
            }
            _ => None,
        }
    }

    /// An Integer (`-`? 1 to 15 digits) or a Decimal (`-`? 1 to 12 digits `.` 1 to 3 digits):
    /// RFC 9651 §4.2.4.
    fn number(&mut self) -> Option<Bare> {
        let negative = self.eat(b'-');
        let start = self.at;
        let int_digits = self.take_while(|b| b.is_ascii_digit());
        if int_digits == 0 {
            return None;
        }
        if self.eat(b'.') {
            let frac = self.take_while(|b| b.is_ascii_digit());
            return (int_digits <= 12 && (1..=3).contains(&frac)).then_some(Bare::Other);
        }
        if int_digits > 15 {
            return None;
        }
        let n = self.s[start..self.at]
            .iter()
            .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
        Some(Bare::Integer(if negative { -n } else { n }))
    }

    /// A String: printable ASCII, `\` escaping only `"` and `\` (RFC 9651 §4.2.5).
    fn string(&mut self) -> Option<()> {
        self.at += 1;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => {
                    self.at += 1;
                    if !matches!(self.peek()?, b'"' | b'\\') {
                        return None;
                    }
                }
                0x20..=0x7e => {}
                _ => return None,
            }
            self.at += 1;
        }
    }

    /// `*( ";" *SP key [ "=" bare-item ] )` (RFC 9651 §4.2.3.2).
    fn parameters(&mut self) -> Option<()> {
        while self.eat(b';') {
            self.take_while(|b| b == b' ');
            if !matches!(self.peek()?, b'a'..=b'z' | b'*') {
                return None;
            }
            self.take_while(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'-' | b'.' | b'*')
            });
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Some(())
    }
}
