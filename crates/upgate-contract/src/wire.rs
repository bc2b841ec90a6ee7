//! The JSON that crosses the wire to and from the application, exactly as in the contract.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The first file info, POSTed to the pre-upload callback (patent step 203/305).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstInfo {
    pub appid: String,
    pub filename: String,
    pub path: String,
    /// `null` for chunked bodies, whose size is unknown before they end.
    pub size: Option<u64>,
    pub content_type: String,
    pub upload_id: String,
    pub client_ip: String,
    /// Who is uploading: the request as the node received it (absent from nodes before wave 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestInfo>,
    /// A resumable upload's append: the upload's length so far (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// A resumable upload's append: the bytes this request brings, when declared (absent
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// The node that took the request (`node_id`; absent from nodes before wave 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

/// The request behind an upload, in the first file info, so the app can decide whether *this
/// user* may upload *this file*.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestInfo {
    pub method: String,
    /// The request's path, without its query.
    pub path: String,
    /// The raw query string, without the `?` (null when there is none).
    pub query: Option<String>,
    /// The headers the app's `forward_headers` names: lower-case names, repeated headers joined
    /// with `, `.
    pub headers: BTreeMap<String, String>,
    /// `raw`, `form`, `tus` or `resumable`.
    pub protocol: String,
    /// A form upload's text fields (`protocol: "form"`), in the form's order of names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

/// The second file info, POSTed to the post-upload callback (patent step 205/307).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondInfo {
    pub appid: String,
    pub filename: String,
    pub path: String,
    pub size: u64,
    pub content_type: String,
    pub upload_id: String,
    /// Always `"true"`: the second info is only sent for a stored file.
    pub success: SuccessTrue,
    pub url: String,
    /// Hex SHA-256 of the body, present when `checksum = "sha256"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The `metadata` the app's pre-callback answer gave (or a form's text fields), echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Last, after the patent's fields. What happened to the file: `uploaded`, or `deleted` (a `DELETE` by the app; `size`
    /// is then the size it had). Old receivers that ignore it see an upload as before.
    #[serde(default)]
    pub event: Event,
    /// The node that stored (or deleted) the file (`node_id`; absent from nodes before wave 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

/// The `event` of a [`SecondInfo`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The file was stored (every upload protocol).
    #[default]
    Uploaded,
    /// The file was deleted through the management API.
    Deleted,
}

/// The constant `"success":"true"` of [`SecondInfo`] (reads `"true"` or `true`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SuccessTrue;

impl Serialize for SuccessTrue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("true")
    }
}

impl<'de> Deserialize<'de> for SuccessTrue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SuccessTrue, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(true) => Ok(SuccessTrue),
            Value::String(s) if s == "true" => Ok(SuccessTrue),
            other => Err(serde::de::Error::custom(format!(
                "expected \"true\", found {other}"
            ))),
        }
    }
}

/// What the application's answer body says (the status code is judged separately, by the
/// node's `callback::pre_decision`).
#[derive(Debug, Clone, PartialEq)]
pub enum AppAnswer {
    /// `{"success":"true"}` or `{"success":true}`; `raw` is the whole JSON value.
    Accept { raw: Value },
    /// `{"success":"false","reason":"…"}` or `{"success":false}`.
    Veto { reason: Option<String>, raw: Value },
    /// Not JSON, not an object, or no recognisable `success` member.
    Unparsable { detail: String },
}

impl AppAnswer {
    /// Reads an answer body. Only `"true"`/`true` and `"false"`/`false` count; `reason` is kept
    /// when it is a string.
    pub fn parse(body: &[u8]) -> AppAnswer {
        let raw: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return AppAnswer::Unparsable {
                    detail: format!("answer is not JSON: {e}"),
                }
            }
        };
        let success = match raw.get("success") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s == "true" => Some(true),
            Some(Value::String(s)) if s == "false" => Some(false),
            _ => None,
        };
        match success {
            Some(true) => AppAnswer::Accept { raw },
            Some(false) => AppAnswer::Veto {
                reason: raw.get("reason").and_then(Value::as_str).map(str::to_owned),
                raw,
            },
            None => AppAnswer::Unparsable {
                detail: "answer has no \"success\": \"true\" or \"false\"".to_owned(),
            },
        }
    }

    /// The JSON value of a parsed answer, `None` when it was unparsable.
    pub fn raw(&self) -> Option<&Value> {
        match self {
            AppAnswer::Accept { raw } | AppAnswer::Veto { raw, .. } => Some(raw),
            AppAnswer::Unparsable { .. } => None,
        }
    }
}

/// The answer an application writes (used by `upgate demo-app` and tests):
/// `{"success":"true"}` or `{"success":"false","reason":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppReply {
    pub success: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AppReply {
    pub fn accept() -> AppReply {
        AppReply {
            success: "true".to_owned(),
            reason: None,
        }
    }

    pub fn veto(reason: impl Into<String>) -> AppReply {
        AppReply {
            success: "false".to_owned(),
            reason: Some(reason.into()),
        }
    }
}

#[cfg(test)]
mod tests;
