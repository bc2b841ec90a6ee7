use serde_json::{json, Value};

use crate::wire::{AppAnswer, AppReply, FirstInfo, SecondInfo, SuccessTrue};

fn first(size: Option<u64>) -> FirstInfo {
    FirstInfo {
        appid: "app1".into(),
        filename: "filename.ext".into(),
        path: "path/filename.ext".into(),
        size,
        content_type: "application/octet-stream".into(),
        upload_id: "u1".into(),
        client_ip: "192.0.2.7".into(),
        request: None,
        offset: None,
        length: None,
        node_id: None,
    }
}

fn second(sha256: Option<&str>) -> SecondInfo {
    SecondInfo {
        event: Default::default(),
        node_id: None,
        appid: "app1".into(),
        filename: "filename.ext".into(),
        path: "path/filename.ext".into(),
        size: 1048576,
        content_type: "text/plain".into(),
        upload_id: "u1".into(),
        success: SuccessTrue,
        url: "http://upload.example.com/app1/path/filename.ext".into(),
        sha256: sha256.map(str::to_owned),
        metadata: None,
    }
}

#[test]
fn first_info_is_the_contract_json_in_order() {
    assert_eq!(
        serde_json::to_string(&first(Some(1048576))).unwrap(),
        r#"{"appid":"app1","filename":"filename.ext","path":"path/filename.ext","size":1048576,"content_type":"application/octet-stream","upload_id":"u1","client_ip":"192.0.2.7"}"#
    );
    let chunked = serde_json::to_value(first(None)).unwrap();
    assert_eq!(chunked["size"], Value::Null);
    let back: FirstInfo = serde_json::from_value(chunked).unwrap();
    assert_eq!(back, first(None));
}

#[test]
fn second_info_is_the_contract_json_in_order() {
    assert_eq!(
        serde_json::to_string(&second(None)).unwrap(),
        r#"{"appid":"app1","filename":"filename.ext","path":"path/filename.ext","size":1048576,"content_type":"text/plain","upload_id":"u1","success":"true","url":"http://upload.example.com/app1/path/filename.ext","event":"uploaded"}"#
    );
    let with_digest = serde_json::to_value(second(Some("ab12"))).unwrap();
    assert_eq!(with_digest["sha256"], "ab12");
    let back: SecondInfo = serde_json::from_value(with_digest).unwrap();
    assert_eq!(back, second(Some("ab12")));
}

#[test]
fn second_info_success_reads_only_true() {
    let mut v = serde_json::to_value(second(None)).unwrap();
    v["success"] = json!(true);
    assert!(serde_json::from_value::<SecondInfo>(v.clone()).is_ok());
    for bad in [
        json!("false"),
        json!(false),
        json!("yes"),
        json!(1),
        Value::Null,
    ] {
        v["success"] = bad.clone();
        assert!(
            serde_json::from_value::<SecondInfo>(v.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn app_answers() {
    let accept = |raw: Value| AppAnswer::Accept { raw };
    let veto = |reason: Option<&str>, raw: Value| AppAnswer::Veto {
        reason: reason.map(str::to_owned),
        raw,
    };
    let cases: Vec<(&str, Option<AppAnswer>)> = vec![
        (
            r#"{"success":"true"}"#,
            Some(accept(json!({"success":"true"}))),
        ),
        (r#"{"success":true}"#, Some(accept(json!({"success":true})))),
        (
            r#" {"success":"true","key":"k1","n":[1,2]} "#,
            Some(accept(json!({"success":"true","key":"k1","n":[1,2]}))),
        ),
        (
            r#"{"success":"false","reason":"quota exceeded"}"#,
            Some(veto(
                Some("quota exceeded"),
                json!({"success":"false","reason":"quota exceeded"}),
            )),
        ),
        (
            r#"{"success":false}"#,
            Some(veto(None, json!({"success":false}))),
        ),
        (
            r#"{"success":false,"reason":7}"#,
            Some(veto(None, json!({"success":false,"reason":7}))),
        ),
        (r#"{"success":"yes"}"#, None),
        (r#"{"success":"TRUE"}"#, None),
        (r#"{"success":1}"#, None),
        (r#"{"success":null}"#, None),
        (r#"{"ok":true}"#, None),
        (r#"{}"#, None),
        (r#"[{"success":"true"}]"#, None),
        (r#""true""#, None),
        ("true", None),
        ("", None),
        ("OK", None),
        (r#"{"success":"true""#, None),
        (r#"{"success":"true"} trailing"#, None),
    ];
    for (body, want) in cases {
        let got = AppAnswer::parse(body.as_bytes());
        match want {
            Some(want) => assert_eq!(got, want, "{body:?}"),
            None => assert!(
                matches!(got, AppAnswer::Unparsable { .. }),
                "{body:?}: {got:?}"
            ),
        }
    }
    assert_eq!(
        AppAnswer::parse(br#"{"success":true,"x":1}"#).raw(),
        Some(&json!({"success":true,"x":1}))
    );
    assert_eq!(AppAnswer::parse(b"nope").raw(), None);
}

#[test]
fn app_reply_writes_what_app_answer_reads() {
    let accept = serde_json::to_vec(&AppReply::accept()).unwrap();
    assert_eq!(accept, br#"{"success":"true"}"#);
    assert!(matches!(
        AppAnswer::parse(&accept),
        AppAnswer::Accept { .. }
    ));
    let veto = serde_json::to_vec(&AppReply::veto("no")).unwrap();
    assert_eq!(veto, br#"{"success":"false","reason":"no"}"#);
    assert!(
        matches!(AppAnswer::parse(&veto), AppAnswer::Veto { reason: Some(r), .. } if r == "no")
    );
}
