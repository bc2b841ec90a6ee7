use super::*;
use crate::http::{ProtocolError, ResponseBody};

#[test]
fn error_body_is_the_contract_json() {
    let resp = Response::json(400, error_body("bad_path", "path \"a\\b\"\n\u{1}é"));
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.headers,
        vec![("Content-Type", "application/json".to_string())]
    );
    let ResponseBody::Full(body) = &resp.body else {
        panic!("error bodies are full");
    };
    assert_eq!(
        std::str::from_utf8(body).unwrap(),
        r#"{"success":"false","error":"bad_path","message":"path \"a\\b\"\n\u0001é"}"#
    );
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["message"], "path \"a\\b\"\n\u{1}é");
}

#[test]
fn json_string_escaping() {
    let cases = [
        ("", r#""""#),
        ("plain", r#""plain""#),
        ("q\"b\\", r#""q\"b\\""#),
        ("\r\n\t", r#""\r\n\t""#),
        ("\u{0}\u{1f}", r#""\u0000\u001f""#),
        ("\u{7f}ü", "\"\u{7f}ü\""),
    ];
    for (input, want) in cases {
        let mut out = String::new();
        push_json_string(&mut out, input);
        assert_eq!(out, want);
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, input);
    }
}

/// Every protocol error renders the contract's JSON with its own status and code, blamed on
/// the client.
#[test]
fn protocol_errors_render_the_contract_json() {
    for e in ProtocolError::ALL {
        let resp = render(&e);
        assert_eq!(resp.status, e.status());
        assert_eq!(Fault::blame(&e), Blame::Client);
        let ResponseBody::Full(body) = &resp.body else {
            panic!("{e:?}: error bodies are full");
        };
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["success"], "false", "{e:?}");
        assert_eq!(v["error"], e.code(), "{e:?}");
        assert_eq!(v["message"], e.message(), "{e:?}");
    }
}

/// The funnel records blame in the access log and the client's message carries no cause.
#[test]
fn respond_records_blame_and_keeps_causes_for_the_operator() {
    let io = std::io::Error::other("disk on fire at /var/lib/upgate/files");
    let e = crate::upload::FlowError::Storage(io);
    let mut log = crate::server::AccessLog::default();
    let resp = respond(&mut log, &e);
    assert_eq!(resp.status, 500);
    assert_eq!(log.blame, Some(Blame::Storage));
    assert_eq!(log.error, Some("storage_failed"));
    let ResponseBody::Full(body) = &resp.body else {
        panic!("error bodies are full");
    };
    let text = std::str::from_utf8(body).unwrap();
    assert!(!text.contains("/var/lib"), "{text}");
    assert!(chain(&e).contains("disk on fire"), "{}", chain(&e));
}
