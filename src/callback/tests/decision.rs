use serde_json::{json, Value};

use crate::callback::{post_delivered, pre_decision, Outcome, Veto, MAX_REASON_BYTES};
use crate::error::Fault;

fn answered(status: u16, body: &str) -> Outcome {
    Outcome::Answered {
        status,
        body: body.as_bytes().to_vec(),
    }
}

/// (outcome, expected (status, code) of the veto, or None for accepted)
fn table() -> Vec<(Outcome, Option<(u16, &'static str)>)> {
    vec![
        (answered(200, r#"{"success":"true"}"#), None),
        (answered(201, r#"{"success":true}"#), None),
        (answered(299, r#"{"success":"true"}"#), None),
        (
            answered(200, r#"{"success":"false","reason":"no"}"#),
            Some((403, "vetoed")),
        ),
        (answered(200, r#"{"success":false}"#), Some((403, "vetoed"))),
        (answered(400, ""), Some((403, "vetoed"))),
        (
            answered(403, r#"{"success":"true"}"#),
            Some((403, "vetoed")),
        ),
        (answered(404, "not found"), Some((403, "vetoed"))),
        (answered(499, r#"{"reason":"x"}"#), Some((403, "vetoed"))),
        (answered(200, ""), Some((502, "callback_failed"))),
        (answered(204, ""), Some((502, "callback_failed"))),
        (answered(200, "OK"), Some((502, "callback_failed"))),
        (
            answered(200, r#"{"success":"maybe"}"#),
            Some((502, "callback_failed")),
        ),
        (answered(301, ""), Some((502, "callback_failed"))),
        (
            answered(302, r#"{"success":"true"}"#),
            Some((502, "callback_failed")),
        ),
        (answered(304, ""), Some((502, "callback_failed"))),
        (
            answered(500, r#"{"success":"true"}"#),
            Some((502, "callback_failed")),
        ),
        (answered(503, ""), Some((502, "callback_failed"))),
        (answered(101, ""), Some((502, "callback_failed"))),
        (Outcome::TimedOut, Some((504, "callback_timeout"))),
        (
            Outcome::ConnectFailed("refused".into()),
            Some((502, "callback_failed")),
        ),
        (
            Outcome::Failed("bad status line".into()),
            Some((502, "callback_failed")),
        ),
        (
            Outcome::Refused("loopback".into()),
            Some((403, "callback_not_allowed")),
        ),
    ]
}

#[test]
fn pre_decision_table() {
    for (outcome, want) in table() {
        let got = pre_decision(&outcome)
            .map(|_| ())
            .map_err(|v| (v.status(), v.code()));
        match want {
            None => assert_eq!(got, Ok(()), "{outcome:?}"),
            Some(w) => assert_eq!(got, Err(w), "{outcome:?}"),
        }
    }
}

#[test]
fn denied_carries_the_apps_reason_or_a_default() {
    let reason = |o: Outcome| match pre_decision(&o) {
        Err(Veto::Denied { reason }) => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        reason(answered(200, r#"{"success":"false","reason":"quota"}"#)),
        "quota"
    );
    assert_eq!(
        reason(answered(200, r#"{"success":false}"#)),
        "the application refused the upload"
    );
    assert_eq!(
        reason(answered(403, r#"{"success":"false","reason":"banned"}"#)),
        "banned"
    );
    assert_eq!(
        reason(answered(451, "<html>")),
        "the application refused the upload (HTTP 451)"
    );
    let long = format!(
        r#"{{"success":"false","reason":"{}"}}"#,
        "é".repeat(MAX_REASON_BYTES)
    );
    let cut = reason(answered(200, &long));
    assert!(
        cut.len() <= MAX_REASON_BYTES && cut.len() >= MAX_REASON_BYTES - 1,
        "{}",
        cut.len()
    );
    assert!(cut.chars().all(|c| c == 'é'));
}

#[test]
fn veto_messages_name_the_cause() {
    let bad = pre_decision(&answered(302, "")).unwrap_err();
    assert!(bad.to_string().contains("302"), "{bad}");
    assert!(bad.to_string().contains("redirect"), "{bad}");
    let refused = pre_decision(&Outcome::ConnectFailed("Connection refused".into())).unwrap_err();
    assert!(
        refused.to_string().contains("Connection refused"),
        "{refused}"
    );
    assert_eq!(
        pre_decision(&answered(200, r#"{"success":"false","reason":"quota"}"#))
            .unwrap_err()
            .to_string(),
        "quota"
    );
}

#[test]
fn post_delivered_on_any_2xx_relays_the_json() {
    let app = json!({"success":"true","key":"v"});
    assert_eq!(post_delivered(&answered(200, &app.to_string())), Some(app));
    assert_eq!(
        post_delivered(&answered(200, r#"{"success":"false"}"#)),
        Some(json!({"success":"false"}))
    );
    assert_eq!(post_delivered(&answered(200, "")), Some(Value::Null));
    assert_eq!(post_delivered(&answered(204, "")), Some(Value::Null));
    assert_eq!(post_delivered(&answered(202, "thanks")), Some(Value::Null));
    for o in [
        answered(302, ""),
        answered(404, r#"{"success":"true"}"#),
        answered(500, ""),
        Outcome::TimedOut,
        Outcome::ConnectFailed("x".into()),
        Outcome::Refused("x".into()),
        Outcome::Failed("x".into()),
    ] {
        assert_eq!(post_delivered(&o), None, "{o:?}");
    }
}
