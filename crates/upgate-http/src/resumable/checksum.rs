//! `Upload-Checksum` (tus checksum extension): `<algorithm> <base64 digest>` for the body of
//! one request. The crate computes no digests (no hashing dependency); the node hashes the
//! chunk and asks [`Checksum::verify`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{ows_trim, ResumableError};

/// The algorithms the node verifies, in `Tus-Checksum-Algorithm` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    Sha1,
    Sha256,
    Md5,
}

/// `Tus-Checksum-Algorithm`: [`ChecksumAlgorithm::ALL`] by name, comma-separated.
pub const TUS_CHECKSUM_ALGORITHM: &str = "sha1,sha256,md5";

impl ChecksumAlgorithm {
    /// Every supported algorithm, in the order announced.
    pub const ALL: [ChecksumAlgorithm; 3] = [
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Md5,
    ];

    /// The tus name (lowercase ASCII, as the extension requires).
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Sha1 => "sha1",
            ChecksumAlgorithm::Sha256 => "sha256",
            ChecksumAlgorithm::Md5 => "md5",
        }
    }

    /// The digest's length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
            ChecksumAlgorithm::Md5 => 16,
        }
    }
}

/// A parsed `Upload-Checksum`: the algorithm and the decoded digest, whose length is the
/// algorithm's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    algorithm: ChecksumAlgorithm,
    digest: Vec<u8>,
}

impl Checksum {
    /// A checksum from a digest computed elsewhere; its length must be the algorithm's.
    pub fn new(algorithm: ChecksumAlgorithm, digest: &[u8]) -> Result<Checksum, ResumableError> {
        if digest.len() != algorithm.digest_len() {
            return Err(ResumableError::BadDigestLength);
        }
        Ok(Checksum {
            algorithm,
            digest: digest.to_vec(),
        })
    }

    /// Parses `<algorithm> <base64 digest>`. An algorithm name that tus allows (lowercase
    /// ASCII letters, digits and `-`) but the node does not verify is
    /// [`ResumableError::UnknownChecksumAlgorithm`] (tus: 400); anything else malformed is
    /// [`ResumableError::BadChecksum`].
    pub fn parse(value: &[u8]) -> Result<Checksum, ResumableError> {
        let value = ows_trim(value);
        let at = memchr::memchr(b' ', value).ok_or(ResumableError::BadChecksum)?;
        let (name, encoded) = (&value[..at], &value[at + 1..]);
        let is_name_byte = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
        if name.is_empty() || !name.iter().all(is_name_byte) {
            return Err(ResumableError::BadChecksum);
        }
        let algorithm = ChecksumAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().as_bytes() == name)
            .ok_or(ResumableError::UnknownChecksumAlgorithm)?;
        let digest = STANDARD
            .decode(encoded)
            .map_err(|_| ResumableError::BadChecksum)?;
        Checksum::new(algorithm, &digest)
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// The header value: `sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=`.
    pub fn format(&self) -> String {
        format!(
            "{} {}",
            self.algorithm.name(),
            STANDARD.encode(&self.digest)
        )
    }

    /// Ok when `computed` (the node's digest of the chunk, with [`Checksum::algorithm`]) is
    /// this one, else [`ResumableError::ChecksumMismatch`] (460).
    pub fn verify(&self, computed: &[u8]) -> Result<(), ResumableError> {
        match computed == self.digest.as_slice() {
            true => Ok(()),
            false => Err(ResumableError::ChecksumMismatch),
        }
    }
}
