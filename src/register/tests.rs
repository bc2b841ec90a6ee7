use proptest::prelude::*;

use super::auth::{authorize, bearer, Credentials, Denied, Principal};
use super::form::{parse_form, FormError, MAX_FIELDS};
use super::request::{self, names_internal_host, normalize_host, BodyKind, RequestError};
use crate::registry::Change;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

type Case<'a> = (&'a [u8], &'a [(&'a str, &'a str)]);

// ── form ────────────────────────────────────────────────────────────────────────────────────

#[test]
fn form_cases() {
    let ok: &[Case<'_>] = &[
        (b"", &[]),
        (b"appid=app1", &[("appid", "app1")]),
        (
            b"appid=app1&callback_url_pre=http%3A%2F%2Fa.example.com%2Fpre",
            &[
                ("appid", "app1"),
                ("callback_url_pre", "http://a.example.com/pre"),
            ],
        ),
        (b"a=1+2&b=%2B", &[("a", "1 2"), ("b", "+")]),
        (b"a&b=", &[("a", ""), ("b", "")]),
        (b"&&a=1&&", &[("a", "1")]),
        (b"a=x=y", &[("a", "x=y")]),
        (b"=v", &[("", "v")]),
        (b"a=1&a=2", &[("a", "1"), ("a", "2")]),
        (b"n=%C3%A9", &[("n", "é")]),
        (b"n=%c3%a9", &[("n", "é")]),
        ("n=é".as_bytes(), &[("n", "é")]),
    ];
    for (input, want) in ok {
        assert_eq!(
            parse_form(input),
            Ok(pairs(want)),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let bad: &[(&[u8], FormError)] = &[
        (b"a=%", FormError::BadPercent { index: 0 }),
        (b"a=1&b=%2", FormError::BadPercent { index: 1 }),
        (b"a=%zz", FormError::BadPercent { index: 0 }),
        (b"%g0=1", FormError::BadPercent { index: 0 }),
        (b"a=%FF", FormError::BadUtf8 { index: 0 }),
        (b"a=\xff", FormError::BadUtf8 { index: 0 }),
        (b"a=%C3", FormError::BadUtf8 { index: 0 }),
    ];
    for (input, want) in bad {
        assert_eq!(
            parse_form(input).as_ref(),
            Err(want),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn form_field_count_is_bounded() {
    let at_limit = vec!["k=v"; MAX_FIELDS].join("&");
    assert_eq!(parse_form(at_limit.as_bytes()).unwrap().len(), MAX_FIELDS);
    let over = vec!["k=v"; MAX_FIELDS + 1].join("&");
    assert_eq!(parse_form(over.as_bytes()), Err(FormError::TooManyFields));
    // Empty pairs do not count.
    let sparse = format!("{}&&&&", at_limit);
    assert_eq!(parse_form(sparse.as_bytes()).unwrap().len(), MAX_FIELDS);
}

fn encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

proptest! {
    /// Whatever an independent encoder (the url crate's) writes, the parser reads back.
    #[test]
    fn form_roundtrip(fields in prop::collection::vec((".{0,12}", ".{0,24}"), 0..MAX_FIELDS)) {
        let text = encode(&fields);
        // The encoder writes "=" for an empty name and value, which is a pair, not an empty one.
        prop_assert_eq!(parse_form(text.as_bytes()), Ok(fields));
    }

    /// On any bytes: no panic, and whenever the strict parser accepts, it agrees with the
    /// lenient WHATWG parser of the url crate.
    #[test]
    fn form_agrees_with_whatwg_when_it_accepts(input in prop::collection::vec(
        prop_oneof![Just(b'&'), Just(b'='), Just(b'%'), Just(b'+'), any::<u8>(), b'0'..=b'f'], 0..200)) {
        if let Ok(ours) = parse_form(&input) {
            let theirs: Vec<(String, String)> = url::form_urlencoded::parse(&input)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            prop_assert!(ours.len() <= MAX_FIELDS);
            prop_assert_eq!(ours, theirs);
        }
    }
}

// ── request bodies ──────────────────────────────────────────────────────────────────────────

fn form(body: &str) -> Result<crate::registry::Registration, RequestError> {
    request::parse(BodyKind::Form, body.as_bytes(), None)
}

fn json(body: &str) -> Result<crate::registry::Registration, RequestError> {
    request::parse(BodyKind::Json, body.as_bytes(), None)
}

#[test]
fn patent_form_registration() {
    let reg = form(
        "appid=app1&callback_url_pre=http://app1.example.com/callback_url_pre\
         &callback_url_post=http://app1.example.com/callback_url_post",
    )
    .unwrap();
    assert_eq!(reg.appid, "app1");
    assert_eq!(
        reg.callback_url_pre,
        Change::Set("http://app1.example.com/callback_url_pre".into())
    );
    assert_eq!(
        reg.callback_url_post,
        Change::Set("http://app1.example.com/callback_url_post".into())
    );
    assert_eq!(reg.callback_hosts, Change::Keep);
    assert_eq!(reg.max_body_bytes, Change::Keep);
    assert!(!reg.rotate_secret);
}

#[test]
fn form_and_json_agree() {
    let f = form(
        "appid=a&callback_hosts=CB.example.com,+cb2.example.com:8443,,&max_body_bytes=1024&rotate_secret=true&callback_url_pre=",
    )
    .unwrap();
    let j = json(
        r#"{"appid":"a","callback_hosts":["CB.example.com","cb2.example.com:8443"],
            "max_body_bytes":1024,"rotate_secret":true,"callback_url_pre":null}"#,
    )
    .unwrap();
    assert_eq!(f, j);
    assert_eq!(
        f.callback_hosts,
        Change::Set(vec!["cb.example.com".into(), "cb2.example.com:8443".into()])
    );
    assert_eq!(f.callback_url_pre, Change::Clear);
    assert_eq!(f.max_body_bytes, Change::Set(1024));
    assert!(f.rotate_secret);
    let comma = json(r#"{"appid":"a","callback_hosts":"x.example.com, y.example.com"}"#).unwrap();
    assert_eq!(
        comma.callback_hosts,
        Change::Set(vec!["x.example.com".into(), "y.example.com".into()])
    );
}

#[test]
fn request_errors_carry_contract_codes() {
    let cases: &[(Result<crate::registry::Registration, RequestError>, &str)] = &[
        (form("callback_url_pre=http://a.example.com/"), "bad_appid"),
        (form("appid="), "bad_appid"),
        (form("appid=bad+id"), "bad_appid"),
        (form(&format!("appid={}", "x".repeat(65))), "bad_appid"),
        (json(r#"{"appid":7}"#), "bad_appid"),
        (
            form("appid=a&callback_url_pre=ftp://a.example.com/x"),
            "bad_callback_url",
        ),
        (
            form("appid=a&callback_url_post=not+a+url"),
            "bad_callback_url",
        ),
        (
            form("appid=a&callback_url_post=/relative"),
            "bad_callback_url",
        ),
        (
            form("appid=a&callback_url_pre=file:///etc/passwd"),
            "bad_callback_url",
        ),
        (
            json(r#"{"appid":"a","callback_url_pre":5}"#),
            "bad_callback_url",
        ),
        (form("appid=a&max_body_bytes=abc"), "bad_field"),
        (form("appid=a&max_body_bytes=-1"), "bad_field"),
        (form("appid=a&max_body_bytes=0"), "bad_field"),
        (
            form("appid=a&max_body_bytes=99999999999999999999999"),
            "bad_field",
        ),
        (json(r#"{"appid":"a","max_body_bytes":1.5}"#), "bad_field"),
        (form("appid=a&rotate_secret=maybe"), "bad_field"),
        (form("appid=a&colour=blue"), "bad_field"),
        (form("appid=a&appid=a"), "bad_field"),
        (
            form("appid=a&callback_hosts=a.example.com/path"),
            "bad_field",
        ),
        (
            form("appid=a&callback_hosts=user@a.example.com"),
            "bad_field",
        ),
        (form("appid=a&callback_hosts=a+b"), "bad_field"),
        (json(r#"{"appid":"a","callback_hosts":[1]}"#), "bad_field"),
        (form("appid=a&x=%zz"), "bad_form"),
        (json("appid=a"), "bad_json"),
        (json("[1,2]"), "bad_json"),
    ];
    for (i, (got, want)) in cases.iter().enumerate() {
        match got {
            Err(e) => assert_eq!(e.code(), *want, "case {i}: {e:?}"),
            Ok(r) => panic!("case {i} accepted: {r:?}"),
        }
    }
}

#[test]
fn appid_from_the_request_head() {
    let reg = request::parse(
        BodyKind::Form,
        b"callback_url_pre=http://a.example.com/",
        Some("app1"),
    )
    .unwrap();
    assert_eq!(reg.appid, "app1");
    let same = request::parse(BodyKind::Form, b"appid=app1", Some("app1")).unwrap();
    assert_eq!(same.appid, "app1");
    let other = request::parse(BodyKind::Form, b"appid=app2", Some("app1")).unwrap_err();
    assert_eq!(other.code(), "bad_appid");
}

#[test]
fn content_types() {
    assert_eq!(
        BodyKind::from_content_type(b"application/x-www-form-urlencoded"),
        Some(BodyKind::Form)
    );
    assert_eq!(
        BodyKind::from_content_type(b"Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
        Some(BodyKind::Form)
    );
    assert_eq!(
        BodyKind::from_content_type(b"application/json;charset=utf-8"),
        Some(BodyKind::Json)
    );
    assert_eq!(BodyKind::from_content_type(b"text/plain"), None);
    assert_eq!(
        BodyKind::from_content_type(b"multipart/form-data; boundary=x"),
        None
    );
    assert_eq!(BodyKind::from_content_type(b"\xff"), None);
}

#[test]
fn hosts_are_normalised() {
    assert_eq!(normalize_host("CB.Example.COM").unwrap(), "cb.example.com");
    assert_eq!(
        normalize_host("cb.example.com:80").unwrap(),
        "cb.example.com:80"
    );
    assert_eq!(
        normalize_host("cb.example.com:443").unwrap(),
        "cb.example.com:443"
    );
    assert_eq!(normalize_host("[::1]:8080").unwrap(), "[::1]:8080");
    assert_eq!(normalize_host("10.0.0.1").unwrap(), "10.0.0.1");
    for bad in ["a/b", "a?b", "a#b", "u@a", "a b", "a:port", ":80"] {
        assert!(normalize_host(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn internal_hosts() {
    for internal in [
        "http://127.0.0.1/x",
        "http://localhost:8080/x",
        "http://api.localhost/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.5.5/",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[fd00::2]/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "127.0.0.1:9000",
        "localhost",
        "[::1]:80",
    ] {
        assert!(names_internal_host(internal), "{internal}");
    }
    for public in [
        "http://app1.example.com/cb",
        "https://93.184.216.34/",
        "cb.example.com:443",
        "8.8.8.8",
    ] {
        assert!(!names_internal_host(public), "{public}");
    }
}

// ── auth ────────────────────────────────────────────────────────────────────────────────────

fn decide(
    auth: &[&str],
    admin: Option<&str>,
    loopback: bool,
    target: Option<(&str, &str)>,
) -> Result<Principal, Denied> {
    let values: Vec<&[u8]> = auth.iter().map(|s| s.as_bytes()).collect();
    authorize(&Credentials {
        authorization: &values,
        admin_token: admin,
        peer_is_loopback: loopback,
        target,
    })
}

#[test]
fn auth_table() {
    use Principal::*;
    let app1 = Some(("app1", "whsec_one"));
    let unauthorized = |r: &Result<Principal, Denied>| matches!(r, Err(Denied::Unauthorized(_)));
    // Admin token configured.
    assert_eq!(
        decide(&["Bearer tok"], Some("tok"), false, None),
        Ok(Operator)
    );
    assert_eq!(
        decide(&["bearer   tok "], Some("tok"), false, app1),
        Ok(Operator)
    );
    assert!(unauthorized(&decide(&[], Some("tok"), true, None)));
    assert!(unauthorized(&decide(
        &["Bearer nope"],
        Some("tok"),
        true,
        None
    )));
    assert!(unauthorized(&decide(
        &["Bearer to"],
        Some("tok"),
        true,
        None
    )));
    assert!(unauthorized(&decide(
        &["Basic dG9rOg=="],
        Some("tok"),
        true,
        None
    )));
    assert!(unauthorized(&decide(
        &["Bearer tok", "Bearer tok"],
        Some("tok"),
        true,
        None
    )));
    // An empty admin token matches nothing.
    assert!(unauthorized(&decide(&["Bearer "], Some(""), true, None)));
    // The app's own secret, for its own record only.
    assert_eq!(
        decide(&["Bearer whsec_one"], Some("tok"), false, app1),
        Ok(App("app1".into()))
    );
    assert!(unauthorized(&decide(
        &["Bearer whsec_one"],
        Some("tok"),
        false,
        Some(("app2", "whsec_two"))
    )));
    assert!(unauthorized(&decide(
        &["Bearer whsec_one"],
        Some("tok"),
        false,
        None
    )));
    // No admin token configured.
    assert_eq!(decide(&[], None, true, None), Ok(Operator));
    assert!(matches!(
        decide(&[], None, false, None),
        Err(Denied::Forbidden(_))
    ));
    assert_eq!(
        decide(&["Bearer whsec_one"], None, false, app1),
        Ok(App("app1".into()))
    );
    // Credentials that are presented are checked, even from loopback.
    assert!(unauthorized(&decide(&["Bearer wrong"], None, true, app1)));
}

#[test]
fn bearer_parsing() {
    assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
    assert_eq!(bearer(b"BEARER\tabc"), Some(&b"abc"[..]));
    assert_eq!(bearer(b"  Bearer  abc  "), Some(&b"abc"[..]));
    assert_eq!(bearer(b"Bearer"), None);
    assert_eq!(bearer(b"Bearer "), None);
    assert_eq!(bearer(b"Bearerabc"), None);
    assert_eq!(bearer(b"Token abc"), None);
}
