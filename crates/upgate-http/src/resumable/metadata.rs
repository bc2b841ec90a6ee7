//! `Upload-Metadata` (tus creation extension): comma-separated `key base64value` pairs. Keys
//! are visible ASCII without commas, unique; a value is standard base64 with padding and may
//! be empty, in which case the space may be left out. Bounded, because the values end up in
//! callbacks and stored records.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{ows_trim, ResumableError};

/// The longest `Upload-Metadata` value taken, in bytes (as sent, base64 included).
pub const MAX_METADATA_BYTES: usize = 4 * 1024;
/// The most pairs in one `Upload-Metadata`.
pub const MAX_METADATA_PAIRS: usize = 32;

/// The pairs of an `Upload-Metadata`, in the order sent, values decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pairs: Vec<(String, Vec<u8>)>,
}

impl Metadata {
    /// Parses a header value. Spaces and tabs around a pair are dropped (tusd does the same,
    /// and hand-written clients put them after commas); inside a pair exactly one space
    /// separates key and value.
    pub fn parse(value: &[u8]) -> Result<Metadata, ResumableError> {
        if value.len() > MAX_METADATA_BYTES {
            return Err(ResumableError::MetadataTooLarge);
        }
        let mut metadata = Metadata::default();
        for pair in value.split(|&b| b == b',') {
            let pair = ows_trim(pair);
            let (key, encoded) = match memchr::memchr(b' ', pair) {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            let key = std::str::from_utf8(key).map_err(|_| ResumableError::BadMetadataKey)?;
            let value = STANDARD
                .decode(encoded)
                .map_err(|_| ResumableError::BadMetadataValue)?;
            metadata.push(key, value)?;
        }
        Ok(metadata)
    }

    /// Adds a pair, refusing what [`Metadata::parse`] would refuse: a bad or repeated key, a
    /// pair too many, or a header that would grow over [`MAX_METADATA_BYTES`].
    pub fn insert(&mut self, key: &str, value: &[u8]) -> Result<(), ResumableError> {
        let grown =
            self.format().len() + usize::from(!self.pairs.is_empty()) + pair_len(key, value);
        if grown > MAX_METADATA_BYTES {
            return Err(ResumableError::MetadataTooLarge);
        }
        self.push(key, value.to_vec())
    }

    fn push(&mut self, key: &str, value: Vec<u8>) -> Result<(), ResumableError> {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(ResumableError::BadMetadataKey);
        }
        if self.get(key).is_some() {
            return Err(ResumableError::DuplicateMetadataKey);
        }
        if self.pairs.len() == MAX_METADATA_PAIRS {
            return Err(ResumableError::TooManyMetadataPairs);
        }
        self.pairs.push((key.to_owned(), value));
        Ok(())
    }

    /// The decoded value of `key` (keys compare exactly), if sent.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The pairs in the order sent.
    pub fn pairs(&self) -> &[(String, Vec<u8>)] {
        &self.pairs
    }

    /// The header value, as HEAD responses echo it: `key base64` pairs joined by `,`, a key
    /// alone for an empty value.
    pub fn format(&self) -> String {
        let mut out = String::new();
        for (i, (key, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            if !value.is_empty() {
                out.push(' ');
                STANDARD.encode_string(value, &mut out);
            }
        }
        out
    }
}

/// How many bytes `key` and `value` take in [`Metadata::format`].
fn pair_len(key: &str, value: &[u8]) -> usize {
    match value.len() {
        0 => key.len(),
        n => key.len() + 1 + n.div_ceil(3) * 4,
    }
}
