//! (f) Resumable-upload headers (tus 1.0 and the IETF draft): (1) generated values format and
//! parse back to themselves: `Upload-Metadata` (keys of visible ASCII, any value bytes),
//! `Upload-Checksum` (each algorithm, digests of its length), tus offsets (with surrounding
//! whitespace), `Upload-Concat` lists, sf-integers and sf-booleans with parameters; (2) values
//! just past a bound (a digest of the wrong length, an offset past `i64::MAX`, one concat URL
//! or metadata pair too many, a 16-digit sf-integer) are refused with their own error; (3)
//! arbitrary bytes and valid values with one byte changed never panic, every refusal is a
//! `ResumableError` with a tus/IETF status, and `parse(format(parse(x))) == parse(x)`
//! (`check::check_resumable_headers` asserts it).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use proptest::prelude::*;
use proptest::sample::select;
use upgate::http::check::check_resumable_headers;
use upgate::http::{
    format_sf_boolean, parse_upload_complete, parse_upload_length, parse_upload_offset, sf_integer,
    Checksum, ChecksumAlgorithm, Concat, Metadata, ResumableError, MAX_CONCAT_PARTS,
    MAX_METADATA_PAIRS, MAX_SF_INTEGER, MAX_UPLOAD_NUMBER,
};

/// A metadata key: visible ASCII without commas.
fn key() -> impl Strategy<Value = String> {
    "[!-+\\--~]{1,12}"
}

/// An upload URL or path: visible ASCII.
fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        "/files/[a-z0-9]{1,16}",
        "https://[a-z.]{1,12}/[!-~]{0,20}",
        "[!-~]{1,8}"
    ]
}

fn ows() -> impl Strategy<Value = &'static str> {
    select(vec!["", " ", "\t", "  \t"])
}

/// RFC 9651 parameters: `;key`, `;key=1`, `;key="s"`, `;key=tok`.
fn parameters() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            "[a-z*][a-z0-9_.*-]{0,5}",
            select(vec!["", "=1", "=-2", "=\"s\"", "=tok", "=?0", "=1.5"]),
        ),
        0..3,
    )
    .prop_map(|ps| ps.into_iter().map(|(k, v)| format!(";{k}{v}")).collect())
}

fn algorithm() -> impl Strategy<Value = ChecksumAlgorithm> {
    select(ChecksumAlgorithm::ALL.to_vec())
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn metadata_round_trips(
        pairs in prop::collection::btree_map(key(), prop::collection::vec(any::<u8>(), 0..40), 1..=MAX_METADATA_PAIRS),
    ) {
        let mut m = Metadata::default();
        for (k, v) in &pairs {
            m.insert(k, v).unwrap();
        }
        let formatted = m.format();
        let want: Vec<String> = pairs
            .iter()
            .map(|(k, v)| match v.is_empty() {
                true => k.clone(),
                false => format!("{k} {}", STANDARD.encode(v)),
            })
            .collect();
        prop_assert_eq!(&formatted, &want.join(","));
        prop_assert_eq!(Metadata::parse(formatted.as_bytes()), Ok(m.clone()));
        for (k, v) in &pairs {
            prop_assert_eq!(m.get(k), Some(v.as_slice()));
        }
        let extra = format!("{formatted},{}", pairs.keys().next().unwrap());
        prop_assert_eq!(Metadata::parse(extra.as_bytes()), Err(ResumableError::DuplicateMetadataKey));
    }

    #[test]
    fn one_metadata_pair_too_many_is_refused(n in MAX_METADATA_PAIRS + 1..MAX_METADATA_PAIRS + 8) {
        let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
        prop_assert_eq!(Metadata::parse(keys.join(",").as_bytes()), Err(ResumableError::TooManyMetadataPairs));
    }

    #[test]
    fn checksums_round_trip_and_lengths_are_checked(
        algorithm in algorithm(),
        digest in prop::collection::vec(any::<u8>(), 32),
        wrong in 1usize..48,
    ) {
        let digest = &digest[..algorithm.digest_len()];
        let c = Checksum::new(algorithm, digest).unwrap();
        let formatted = c.format();
        prop_assert_eq!(&formatted, &format!("{} {}", algorithm.name(), STANDARD.encode(digest)));
        prop_assert_eq!(Checksum::parse(formatted.as_bytes()), Ok(c));
        prop_assume!(wrong != algorithm.digest_len());
        let bad = format!("{} {}", algorithm.name(), STANDARD.encode(vec![7u8; wrong]));
        prop_assert_eq!(Checksum::parse(bad.as_bytes()), Err(ResumableError::BadDigestLength));
    }

    #[test]
    fn tus_numbers_round_trip_up_to_i64_max(
        n in prop_oneof![0..=MAX_UPLOAD_NUMBER, Just(MAX_UPLOAD_NUMBER), 0u64..1000],
        before in ows(),
        after in ows(),
        past in MAX_UPLOAD_NUMBER + 1..=u64::MAX,
        sign in select(vec!["+", "-"]),
    ) {
        let value = format!("{before}{n}{after}");
        prop_assert_eq!(parse_upload_offset(value.as_bytes()), Ok(n));
        prop_assert_eq!(parse_upload_length(value.as_bytes()), Ok(n));
        prop_assert_eq!(parse_upload_offset(past.to_string().as_bytes()), Err(ResumableError::BadUploadOffset));
        prop_assert_eq!(parse_upload_offset(format!("{sign}{n}").as_bytes()), Err(ResumableError::BadUploadOffset));
    }

    #[test]
    fn concat_lists_round_trip(urls in prop::collection::vec(url(), 1..=MAX_CONCAT_PARTS), extra in url()) {
        let c = Concat::Final(urls.clone());
        prop_assert_eq!(c.format(), format!("final;{}", urls.join(" ")));
        prop_assert_eq!(Concat::parse(c.format().as_bytes()), Ok(c));
        if urls.len() == MAX_CONCAT_PARTS {
            let more = format!("final;{} {extra}", urls.join(" "));
            prop_assert_eq!(Concat::parse(more.as_bytes()), Err(ResumableError::TooManyConcatParts));
        }
    }

    #[test]
    fn sf_integers_and_booleans_round_trip_with_parameters(
        n in -MAX_SF_INTEGER..=MAX_SF_INTEGER,
        b in any::<bool>(),
        params in parameters(),
        before in ows(),
        after in ows(),
        past in MAX_SF_INTEGER + 1..=i64::MAX,
    ) {
        prop_assert_eq!(sf_integer(format!("{before}{n}{params}{after}").as_bytes()), Some(n));
        prop_assert_eq!(sf_integer(past.to_string().as_bytes()), None);
        let value = format!("{before}{}{params}{after}", format_sf_boolean(b));
        prop_assert_eq!(parse_upload_complete(value.as_bytes()), Ok(b));
    }

    #[test]
    fn arbitrary_bytes_hold_the_invariants(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        check_resumable_headers(&bytes);
    }

    #[test]
    fn valid_values_with_one_byte_changed_hold_the_invariants(
        value in select(vec![
            "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential",
            "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
            "md5 XrY7u+Ae7tCTyyK7j1rNww==",
            "final;/files/a https://tus.example.org/files/b",
            "partial",
            "9223372036854775807",
            "999999999999999",
            "?1;a=1",
            "8",
            "1.0.0",
        ]),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = value.as_bytes().to_vec();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        check_resumable_headers(&bytes);
    }
}
