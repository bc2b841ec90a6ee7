//! Body digests (`checksum = "sha256"`): the SHA-256 a client claims for its body, read from
//! the head before `100 Continue`, and the check of that claim against the digest the node
//! computes while it stores the body. Pure functions; the flow calls them.
//!
//! Headers read (all optional; every one present must be well formed and must match):
//!
//! | header | form | spec |
//! |---|---|---|
//! | `Content-Digest` | `sha-256=:<base64>:` (a dictionary; other algorithms are ignored) | RFC 9530 |
//! | `Digest` | `SHA-256=<base64>` (a list; algorithm names ignore case; others are ignored) | RFC 3230, 5843 |
//! | `x-checksum-sha256` | 64 hex digits, either case | common practice |
//!
//! Base64 is the standard alphabet, with or without `=` padding, and must decode to 32 bytes.
//! A header that does not parse, or whose SHA-256 is not 32 bytes, is 400 `bad_digest`; a body
//! whose digest differs from any claim is 400 `digest_mismatch`.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::http::RequestHead;

/// A SHA-256 value.
pub type Sha256Value = [u8; 32];

/// Base64 as RFC 9530 (structured fields) and RFC 3230 use it: padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The headers a claim can come from.
pub const CONTENT_DIGEST: &str = "content-digest";
pub const DIGEST: &str = "digest";
pub const X_CHECKSUM_SHA256: &str = "x-checksum-sha256";

/// A digest header that does not parse (400 `bad_digest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDigest {
    pub header: &'static str,
    pub why: &'static str,
}

impl BadDigest {
    fn new(header: &'static str, why: &'static str) -> Self {
        BadDigest { header, why }
    }
}

/// The body's digest differs from a claim (400 `digest_mismatch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub header: &'static str,
    pub claimed: Sha256Value,
    pub actual: Sha256Value,
}

/// The SHA-256 values a client claimed, with the header each came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims(pub Vec<(&'static str, Sha256Value)>);

impl Claims {
    /// Every claim in `head`; an error for the first malformed digest header.
    pub fn from_head(head: &RequestHead) -> Result<Claims, BadDigest> {
        Claims::from_fields(head.fields())
    }

    /// [`Claims::from_head`] over (name, value) pairs.
    pub fn from_fields<'a>(
        fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Claims, BadDigest> {
        let mut claims = Vec::new();
        for (name, value) in fields {
            let (header, found) = if name.eq_ignore_ascii_case(CONTENT_DIGEST.as_bytes()) {
                (CONTENT_DIGEST, parse_content_digest(value)?)
            } else if name.eq_ignore_ascii_case(DIGEST.as_bytes()) {
                (DIGEST, parse_digest(value)?)
            } else if name.eq_ignore_ascii_case(X_CHECKSUM_SHA256.as_bytes()) {
                (X_CHECKSUM_SHA256, vec![parse_hex(value)?])
            } else {
                continue;
            };
            claims.extend(found.into_iter().map(|v| (header, v)));
        }
        Ok(Claims(claims))
    }

    /// Checks `actual` against every claim.
    pub fn check(&self, actual: &Sha256Value) -> Result<(), Mismatch> {
        match self.0.iter().find(|(_, claimed)| claimed != actual) {
            None => Ok(()),
            Some(&(header, claimed)) => Err(Mismatch {
                header,
                claimed,
                actual: *actual,
            }),
        }
    }
}

/// The digest of a body as it streams past, and the claims it must meet.
pub struct BodyDigest {
    hasher: Sha256,
    claims: Claims,
}

impl BodyDigest {
    pub fn new(claims: Claims) -> Self {
        BodyDigest {
            hasher: Sha256::new(),
            claims,
        }
    }

    /// The next body bytes, in order.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// The body's SHA-256 in lowercase hex, once it matches every claim.
    pub fn finish(self) -> Result<String, Mismatch> {
        let actual: Sha256Value = self.hasher.finalize().into();
        self.claims.check(&actual)?;
        Ok(hex(&actual))
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// `x-checksum-sha256`: 64 hex digits (surrounding whitespace allowed).
pub fn parse_hex(value: &[u8]) -> Result<Sha256Value, BadDigest> {
    let bad = |why| BadDigest::new(X_CHECKSUM_SHA256, why);
    let v = value.trim_ascii();
    if v.len() != 64 {
        return Err(bad("expected 64 hex digits"));
    }
    let mut out = [0u8; 32];
    for (i, pair) in v.chunks_exact(2).enumerate() {
        let hi = hex_digit(pair[0]).ok_or_else(|| bad("not a hex digit"))?;
        let lo = hex_digit(pair[1]).ok_or_else(|| bad("not a hex digit"))?;
        out[i] = hi << 4 | lo;
    }
    Ok(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn sha256_from_base64(b64: &[u8], header: &'static str) -> Result<Sha256Value, BadDigest> {
    let bytes = BASE64
        .decode(b64)
        .map_err(|_| BadDigest::new(header, "the sha-256 value is not base64"))?;
    bytes
        .try_into()
        .map_err(|_| BadDigest::new(header, "the sha-256 value is not 32 bytes"))
}

/// `Digest` (RFC 3230): `alg=value` elements separated by commas; the SHA-256 ones (the
/// algorithm name ignores case). Empty list elements are allowed, as in every HTTP list.
pub fn parse_digest(value: &[u8]) -> Result<Vec<Sha256Value>, BadDigest> {
    let bad = |why| BadDigest::new(DIGEST, why);
    let mut found = Vec::new();
    let mut elements = 0;
    for element in value.split(|&b| b == b',') {
        let element = element.trim_ascii();
        if element.is_empty() {
            continue;
        }
        elements += 1;
        let eq = memchr::memchr(b'=', element).ok_or_else(|| bad("an element without '='"))?;
        let (alg, v) = (&element[..eq], &element[eq + 1..]);
        if alg.is_empty() || !alg.iter().all(|&b| crate::http::is_tchar(b)) {
            return Err(bad("an algorithm name that is not a token"));
        }
        if alg.eq_ignore_ascii_case(b"sha-256") {
            found.push(sha256_from_base64(v, DIGEST)?);
        }
    }
    if elements == 0 {
        return Err(bad("empty"));
    }
    Ok(found)
}

/// `Content-Digest` (RFC 9530): a structured-field dictionary (RFC 8941) whose members are
/// `algorithm=:base64:`; the `sha-256` ones. Other members must be well-formed dictionary
/// members but are otherwise ignored.
pub fn parse_content_digest(value: &[u8]) -> Result<Vec<Sha256Value>, BadDigest> {
    let bad = |why| BadDigest::new(CONTENT_DIGEST, why);
    let mut p = SfParser {
        s: value.trim_ascii(),
        at: 0,
    };
    if p.s.is_empty() {
        return Err(bad("empty"));
    }
    let mut found = Vec::new();
    loop {
        let key = p
            .key()
            .ok_or_else(|| bad("a member name that is not a key"))?;
        let item = if p.eat(b'=') {
            p.bare_item()
                .ok_or_else(|| bad("a member value that does not parse"))?
        } else {
            Item::Other
        };
        p.parameters()
            .ok_or_else(|| bad("parameters that do not parse"))?;
        if key == b"sha-256" {
            match item {
                Item::Bytes(b64) => found.push(sha256_from_base64(b64, CONTENT_DIGEST)?),
                Item::Other => return Err(bad("sha-256 is not a byte sequence (:base64:)")),
            }
        }
        p.ows();
        if p.done() {
            return Ok(found);
        }
        if !p.eat(b',') {
            return Err(bad("members not separated by ','"));
        }
        p.ows();
        if p.done() {
            return Err(bad("a trailing ','"));
        }
    }
}

/// A bare item of a structured field: a byte sequence (its base64), or anything else.
enum Item<'a> {
    Bytes(&'a [u8]),
    Other,
}

/// Just enough of an RFC 8941 parser for a dictionary of items with parameters.
struct SfParser<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> SfParser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += hit as usize;
        hit
    }

    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.at;
        while self.peek().is_some_and(&f) {
            self.at += 1;
        }
        &self.s[start..self.at]
    }

    /// `key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`
    fn key(&mut self) -> Option<&'a [u8]> {
        if !matches!(self.peek(), Some(b'a'..=b'z' | b'*')) {
            return None;
        }
        Some(
            self.take_while(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*')),
        )
    }

    /// A byte sequence, string, token, number or boolean.
    fn bare_item(&mut self) -> Option<Item<'a>> {
        match self.peek()? {
            b':' => {
                self.at += 1;
                let b64 = self.take_while(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
                self.eat(b':').then_some(Item::Bytes(b64))
            }
            b'"' => {
                self.at += 1;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.at += 1;
                            return Some(Item::Other);
                        }
                        b'\\' => {
                            self.at += 1;
                            if !matches!(self.peek()?, b'"' | b'\\') {
                                return None;
                            }
                            self.at += 1;
                        }
                        0x20..=0x7e => self.at += 1,
                        _ => return None,
                    }
                }
            }
            b'?' => {
                self.at += 1;
                matches!(self.peek()?, b'0' | b'1').then(|| {
                    self.at += 1;
                    Item::Other
                })
            }
            b'-' | b'0'..=b'9' => {
                self.eat(b'-');
                let n = self.take_while(|b| b.is_ascii_digit() || b == b'.');
                (!n.is_empty() && n[0].is_ascii_digit()).then_some(Item::Other)
            }
            b if b.is_ascii_alphabetic() || b == b'*' => {
                self.take_while(|b| crate::http::is_tchar(b) || b == b':' || b == b'/');
                Some(Item::Other)
            }
            _ => None,
        }
    }

    /// `*( ";" *SP key [ "=" bare-item ] )`
    fn parameters(&mut self) -> Option<()> {
        while self.eat(b';') {
            while self.eat(b' ') {}
            self.key()?;
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests;
