//! Replays every checked-in fuzz seed (`fuzz/seeds/<target>/*`) through the same invariant
//! checks the fuzz targets run (`upgate::http::check`), so CI exercises them without
//! cargo-fuzz or a nightly toolchain. A crash found by fuzzing becomes a regression test by
//! saving its bytes as a new seed file.

use std::fs;
use std::path::{Path, PathBuf};

use upgate::http::check::{self, Step};
use upgate::http::{Limits, ProtocolError};

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable seed dir").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = fs::read(&p).expect("readable seed");
            (p, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 12,
        "{}: only {} seeds",
        dir.display(),
        files.len()
    );
    files
}

/// Runs `check` on every seed of `target`, naming the seed that fails.
fn replay(target: &str, check: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let mut failed = Vec::new();
    for (path, bytes) in seeds(target) {
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "seeds that break an invariant: {failed:#?}"
    );
}

#[test]
fn head_seeds_hold_the_head_invariants() {
    replay("head", check::check_head);
}

#[test]
fn chunked_seeds_hold_the_decoder_invariants() {
    replay("chunked", check::check_chunked);
}

#[test]
fn h1_conn_seeds_hold_the_connection_invariants() {
    replay("h1_conn", |input| {
        let (splits, data) = check::splits_from_prefix(input);
        check::check_conn(data, &splits);
    });
}

/// The seeds are not only crash-free: a few named ones must come out as intended, so a seed
/// that silently stopped reaching its code path is noticed.
#[test]
fn named_seeds_reach_their_outcome() {
    let seed = |target: &str, name: &str| {
        let input = fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/seeds")
                .join(target)
                .join(name),
        )
        .expect("seed exists");
        let (_, data) = check::splits_from_prefix(&input);
        check::drive(data, &[], &Limits::default())
    };
    let last = |steps: Vec<Step>| steps.last().cloned().expect("at least one step");
    let heads = |steps: &[Step]| steps.iter().filter(|s| matches!(s, Step::Head(_))).count();

    assert_eq!(heads(&seed("h1_conn", "pipelined_get_post_get")), 3);
    assert_eq!(
        last(seed("h1_conn", "pipelined_get_post_get")),
        Step::Closed
    );
    assert_eq!(heads(&seed("h1_conn", "pipelined_close_in_middle")), 1);
    assert_eq!(
        last(seed("h1_conn", "cl_and_te")),
        Step::Error(ProtocolError::LengthWithTransferEncoding)
    );
    assert_eq!(
        last(seed("h1_conn", "bare_lf")),
        Step::Error(ProtocolError::BadLineEnding)
    );
    assert_eq!(
        last(seed("h1_conn", "obs_fold")),
        Step::Error(ProtocolError::ObsFold)
    );
    assert_eq!(
        last(seed("h1_conn", "chunk_size_overflow")),
        Step::Error(ProtocolError::ChunkSizeOverflow)
    );
    assert_eq!(
        last(seed("h1_conn", "incomplete_body")),
        Step::Error(ProtocolError::IncompleteBody)
    );
    assert_eq!(
        last(seed("h1_conn", "incomplete_head")),
        Step::Error(ProtocolError::IncompleteHead)
    );

    let upload = seed("h1_conn", "upload_cl");
    assert_eq!(upload[1], Step::Continue(true));
    assert_eq!(upload[2], Step::Data(b"hello world".to_vec()));
    let chunked = seed("h1_conn", "upload_chunked");
    assert_eq!(chunked[2], Step::Data(b"hello world0123456789".to_vec()));
}

#[test]
fn path_seeds_hold_the_path_invariants() {
    replay("path", upgate::checks::check_path);
}

#[test]
fn register_form_seeds_hold_the_parser_invariants() {
    replay("register_form", upgate::checks::check_register_form);
}

#[test]
fn callback_url_seeds_hold_the_policy_invariants() {
    replay("callback_url", upgate::checks::check_callback_url);
}

#[test]
fn callback_answer_seeds_hold_the_answer_invariants() {
    replay("callback_answer", upgate::checks::check_callback_answer);
}

#[test]
fn etcd_watch_seeds_hold_the_watch_invariants() {
    replay("etcd_watch", upgate::checks::check_etcd_watch);
}

#[test]
fn tls_bytes_seeds_hold_the_tls_invariants() {
    replay("tls_bytes", upgate::checks::check_tls_bytes);
}

#[test]
fn tls_records_seeds_hold_the_record_invariants() {
    replay("tls_records", upgate::checks::check_tls_records);
}

/// The new targets' invariants only bite on accepted inputs: some seeds must be accepted, and
/// the traversal and SSRF shapes refused, so the seeds cover both sides.
#[test]
fn path_and_policy_seeds_reach_both_outcomes() {
    use upgate::callback::CallbackPolicy;
    use upgate::storage::path;
    let read = |target: &str, name: &str| {
        fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/seeds")
                .join(target)
                .join(name),
        )
        .expect("seed exists")
    };
    for ok in ["simple", "nested", "escaped_space", "utf8"] {
        assert!(path::parse(&read("path", ok)).is_ok(), "{ok}");
    }
    for bad in [
        "dotdot",
        "escaped_dotdot",
        "escaped_slash",
        "backslash",
        "overlong_dot",
        "nul",
    ] {
        assert!(path::parse(&read("path", bad)).is_err(), "{bad}");
    }
    let policy = CallbackPolicy::new(vec!["127.0.0.1:8081".into(), "app.example.com".into()]);
    let url = |name: &str| String::from_utf8(read("callback_url", name)).expect("UTF-8 seed");
    for ok in ["listed", "listed_name", "decimal", "hex", "trailing_dot"] {
        assert!(policy.check(&url(ok), &[]).is_ok(), "{ok}");
    }
    for bad in [
        "other_port",
        "loopback_2",
        "decimal_2",
        "octal",
        "mapped",
        "link_local",
    ] {
        assert!(policy.check(&url(bad), &[]).is_err(), "{bad}");
    }
    for bad in ["private", "userinfo", "userinfo_trick", "file", "gopher"] {
        assert!(policy.check(&url(bad), &[]).is_err(), "{bad}");
    }
    let with_entry = |name: &str| {
        let raw = url(name);
        let (entry, url) = raw.split_once('\0').expect("entry seed");
        policy.check(url, &[entry.to_owned()]).is_ok()
    };
    assert!(with_entry("app_entry") && with_entry("app_entry_v6") && with_entry("app_entry_name"));
    assert!(!with_entry("app_entry_other_port"));
}

#[test]
fn multipart_seeds_hold_the_parser_invariants() {
    replay("multipart", check::check_multipart);
}

/// Each multipart seed reaches the outcome it was written for: the client forms parse into
/// their parts, each violation into its error.
#[test]
fn multipart_seeds_reach_their_outcome() {
    use check::{MultipartOutcome, MultipartRun};
    use upgate::http::MultipartError::*;
    let run = |name: &str| -> MultipartRun {
        let input = fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/seeds/multipart")
                .join(name),
        )
        .expect("seed exists");
        let (cuts, body) = check::splits_from_prefix(&input);
        check::check_multipart_with(body, &check::boundary_in(body), &cuts)
    };
    let names = |run: &MultipartRun| -> Vec<(String, Option<String>)> {
        run.parts()
            .into_iter()
            .map(|(head, _)| (head.name, head.filename))
            .collect()
    };
    let complete = |name: &str, parts: &[(&str, Option<&str>)]| {
        let r = run(name);
        assert_eq!(r.outcome, MultipartOutcome::Complete, "{name}");
        let want: Vec<_> = parts
            .iter()
            .map(|(n, f)| (n.to_string(), f.map(String::from)))
            .collect();
        assert_eq!(names(&r), want, "{name}");
        r
    };
    complete("curl_form", &[("key", None), ("file", Some("a.txt"))]);
    complete(
        "requests_form",
        &[("key", None), ("file", Some("report.csv"))],
    );
    let chrome = complete("chrome_form", &[("key", None), ("file", Some("photo.png"))]);
    assert_eq!(
        chrome.parts()[1].1,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\r\n--\r\n-\x00\xff"
    );
    complete(
        "browser_utf8_names",
        &[(
            "caf\u{e9} \"x\"\r\n",
            Some("r\u{e9}sum\u{e9} \u{6587}\u{4ef6} 100%.pdf"),
        )],
    );
    complete("filename_star", &[("file", Some("\u{6587}\u{4ef6}.txt"))]);
    complete("quoted_pair", &[("a\"b", Some("C:\\dir\\file.txt"))]);
    let near = complete("boundary_like_lines", &[("f", Some("x"))]);
    assert!(near.parts()[0].1.starts_with(b"x\r\n--AaB03xX\r\n"));
    assert_eq!(
        complete("crlf_at_end_of_data", &[("f", Some("x"))]).parts()[0].1,
        b"line\r\n\r\n"
    );
    complete("padding_preamble_epilogue", &[("a", None)]);
    complete("content_type_line_first", &[("a", None)]);
    complete("empty_form", &[]);
    assert_eq!(run("truncated").outcome, MultipartOutcome::Truncated);
    for (name, error) in [
        ("no_disposition", NoContentDisposition),
        ("not_form_data", NotFormData),
        ("missing_name", MissingName),
        (
            "bare_lf_header",
            BadPartHeaders("a header line does not end with CRLF"),
        ),
        ("too_much_padding", BadDelimiter),
        ("headers_too_large", HeadersTooLarge),
        ("too_many_parts", TooManyParts),
        ("preamble_too_large", PreambleTooLarge),
    ] {
        assert_eq!(run(name).outcome, MultipartOutcome::Error(error), "{name}");
    }
}

#[test]
fn resumable_headers_seeds_hold_the_parser_invariants() {
    replay("resumable_headers", check::check_resumable_headers);
}

/// Each resumable-header seed is what its name says: a valid value parses as intended, the
/// overflow and the unknown algorithm are refused with their own errors.
#[test]
fn resumable_headers_seeds_reach_their_outcome() {
    use upgate::http::*;
    let read = |name: &str| {
        fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/seeds/resumable_headers")
                .join(name),
        )
        .expect("seed exists")
    };
    assert_eq!(parse_tus_resumable(&read("tus_resumable")), Ok(()));
    let meta = Metadata::parse(&read("metadata_tus_js_client")).expect("metadata");
    assert_eq!(meta.get("filetype"), Some(&b"text/plain"[..]));
    assert_eq!(
        Metadata::parse(&read("metadata_tus_example")).map(|m| m.pairs().len()),
        Ok(2)
    );
    assert_eq!(
        Checksum::parse(&read("checksum_sha256")).map(|c| c.algorithm()),
        Ok(ChecksumAlgorithm::Sha256)
    );
    assert_eq!(
        Checksum::parse(&read("checksum_unknown_algorithm")),
        Err(ResumableError::UnknownChecksumAlgorithm)
    );
    assert!(matches!(
        Concat::parse(&read("concat_final")),
        Ok(Concat::Final(urls)) if urls.len() == 2
    ));
    assert_eq!(
        parse_upload_offset(&read("upload_offset")),
        Ok(1_230_000_000)
    );
    assert_eq!(
        parse_upload_offset(&read("upload_offset_overflow")),
        Err(ResumableError::BadUploadOffset)
    );
    assert_eq!(
        parse_upload_complete(&read("upload_complete_params")),
        Ok(false)
    );
    assert_eq!(
        InteropVersion::parse(&read("interop_version_tus_js_client")),
        Ok(InteropVersion::V6)
    );
}
