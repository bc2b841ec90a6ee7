use super::*;

#[test]
fn accepts_nested_paths_and_decodes_escapes() {
    let t = parse(b"/app1/dir/sub/file%20name.ext").unwrap();
    assert_eq!(t.appid, "app1");
    assert_eq!(t.rel, "dir/sub/file name.ext");
    assert_eq!(t.filename(), "file name.ext");
    assert_eq!(encode_rel(&t.rel), "dir/sub/file%20name.ext");
    assert_eq!(parse(b"/app1/%C3%A9t%C3%A9.txt").unwrap().rel, "été.txt");
}

#[test]
fn refuses_every_escape_shape() {
    let cases: &[(&[u8], PathError)] = &[
        (b"/app1", PathError::NoFile),
        (b"/app1/", PathError::EmptySegment),
        (b"app1/x", PathError::NoFile),
        (b"/app1//x", PathError::EmptySegment),
        (b"/app1/../x", PathError::DotSegment),
        (b"/app1/./x", PathError::DotSegment),
        (b"/app1/%2e%2e/x", PathError::DotSegment),
        (b"/app1/%2E/x", PathError::DotSegment),
        (b"/app1/a%2fb", PathError::EscapedSeparator),
        (b"/app1/a%5Cb", PathError::EscapedSeparator),
        (b"/app1/a\\b", PathError::EscapedSeparator),
        (b"/app1/a%00b", PathError::ControlByte),
        (b"/app1/a%0ab", PathError::ControlByte),
        (b"/app1/a%7fb", PathError::ControlByte),
        (b"/app1/%c0%ae%c0%ae/x", PathError::NotUtf8),
        (b"/app1/%zz", PathError::BadEscape),
        (b"/app1/%4", PathError::BadEscape),
        (b"/app1/x/", PathError::EmptySegment),
    ];
    for (input, want) in cases {
        assert_eq!(
            parse(input),
            Err(*want),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn refuses_over_1024_bytes_and_long_segments() {
    let mut long = b"/app1/".to_vec();
    long.extend(std::iter::repeat_n(b'a', 1019));
    assert_eq!(long.len(), 1025);
    assert_eq!(parse(&long), Err(PathError::TooLong));
    long.pop();
    assert_eq!(parse(&long), Err(PathError::SegmentTooLong));
    let ok = format!("/app1/{}", "a/".repeat(400) + "f");
    assert!(ok.len() <= 1024);
    assert_eq!(parse(ok.as_bytes()).unwrap().filename(), "f");
}

#[test]
fn first_segment_is_the_raw_appid() {
    assert_eq!(first_segment(b"/app1/x/y"), b"app1");
    assert_eq!(first_segment(b"/app1"), b"app1");
    assert_eq!(first_segment(b"/"), b"");
}

#[test]
fn refuses_an_appid_segment_that_is_not_an_appid() {
    // The appid is joined below `files/` undecoded: `..` would reach `data_dir` (a download of
    // `/../registry/conf` once served sled's files).
    for input in [
        &b"/../registry/conf"[..],
        b"/./app1/x",
        b"/%2e%2e/x",
        b"/..\\/x",
        b"/app.1/x",
        b"/a b/x",
        b"//x",
        b"/",
    ] {
        assert_eq!(
            parse(input),
            Err(PathError::BadAppid),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    let id64 = format!("/{}/x", "a".repeat(64));
    assert!(parse(id64.as_bytes()).is_ok());
    let id65 = format!("/{}/x", "a".repeat(65));
    assert_eq!(parse(id65.as_bytes()), Err(PathError::BadAppid));
    assert_eq!(parse(b"/App_1-x/f").unwrap().appid, "App_1-x");
}
