//! Pure classifiers from a call's [`Outcome`] to what the upload flow does next.

use serde_json::Value;

use super::{AppAnswer, Outcome};

/// The longest application reason relayed to the client, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;

/// Why the pre-upload callback did not accept the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Veto {
    /// The application said no: `{"success":"false"}` (or `false`) on a 2xx, or any 4xx.
    /// 403 `vetoed`; `reason` is the application's when it gave one.
    Denied { reason: String },
    /// The guarded resolver refused every address of a client-carried URL's host.
    /// 403 `callback_not_allowed`.
    NotAllowed { detail: String },
    /// No answer within `callback_timeout_ms`. 504 `callback_timeout`.
    Timeout,
    /// Connection refused or failed, 5xx, 3xx (redirects are not followed), any other status, or
    /// a 2xx whose body is not an answer. 502 `callback_failed`.
    BadGateway { detail: String },
}

impl std::fmt::Display for Veto {
    /// The human message of the error body.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Veto::Denied { reason } => f.write_str(reason),
            Veto::NotAllowed { detail } => write!(f, "callback not allowed: {detail}"),
            Veto::Timeout => {
                f.write_str("the application did not answer the pre-upload callback in time")
            }
            Veto::BadGateway { detail } => write!(f, "pre-upload callback failed: {detail}"),
        }
    }
}

impl std::error::Error for Veto {}

fn bounded(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

/// The pre-upload decision: `Ok(answer)` only for a 2xx whose body is `{"success":"true"}`
/// (or `true`); the answer may shape the upload (`crate::upload::shape`).
pub fn pre_decision(outcome: &Outcome) -> Result<Value, Veto> {
    match outcome {
        Outcome::Answered { status, body } => match status {
            200..=299 => match AppAnswer::parse(body) {
                AppAnswer::Accept { raw } => Ok(raw),
                AppAnswer::Veto { reason, .. } => Err(Veto::Denied {
                    reason: bounded(
                        reason.unwrap_or_else(|| "the application refused the upload".to_owned()),
                    ),
                }),
                AppAnswer::Unparsable { detail } => Err(Veto::BadGateway { detail }),
            },
            400..=499 => {
                let reason = serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_else(|| {
                        format!("the application refused the upload (HTTP {status})")
                    });
                Err(Veto::Denied {
                    reason: bounded(reason),
                })
            }
            300..=399 => Err(Veto::BadGateway {
                detail: format!(
                    "the application answered HTTP {status}; redirects are not followed"
                ),
            }),
            _ => Err(Veto::BadGateway {
                detail: format!("the application answered HTTP {status}"),
            }),
        },
        Outcome::TimedOut => Err(Veto::Timeout),
        Outcome::Refused(detail) => Err(Veto::NotAllowed {
            detail: detail.clone(),
        }),
        Outcome::ConnectFailed(detail) | Outcome::Failed(detail) => Err(Veto::BadGateway {
            detail: detail.clone(),
        }),
    }
}

/// Whether the post-upload notification was delivered: `Some(answer)` for any 2xx, where
/// `answer` is the application's JSON body (relayed to the client as `app`) or `Null` when the
/// body is empty or not JSON; `None` otherwise (the outbox retries).
pub fn post_delivered(outcome: &Outcome) -> Option<Value> {
    match outcome {
        Outcome::Answered { status, body } if (200..=299).contains(status) => {
            Some(serde_json::from_slice(body).unwrap_or(Value::Null))
        }
        _ => None,
    }
}
