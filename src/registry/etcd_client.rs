//! etcd's v3 API through its JSON gateway (`/v3/kv/range`, `/v3/kv/txn`, `/v3/watch`) with
//! ureq: blocking calls, no async runtime of their own, so they run on the registry's control
//! thread and never on an io_uring ring. Keys and values are base64 in the JSON; 64-bit
//! integers are strings; fields at their zero value are left out (a failed transaction has no
//! `succeeded`). Why the gateway and not the gRPC crate: see `docs/operations.md`, "Many nodes".

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

/// Why an etcd call failed.
#[derive(Debug)]
pub enum EtcdError {
    /// No endpoint answered (connection refused, reset, timed out): etcd is unreachable.
    Unreachable(String),
    /// An endpoint answered with something that is not the v3 API's answer.
    Protocol(String),
}

impl std::fmt::Display for EtcdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EtcdError::Unreachable(why) => write!(f, "etcd unreachable: {why}"),
            EtcdError::Protocol(why) => write!(f, "etcd answered unexpectedly: {why}"),
        }
    }
}

impl std::error::Error for EtcdError {}

/// One key's value and the revision that last changed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    Put(Kv),
    /// The key was deleted at this revision.
    Delete {
        key: Vec<u8>,
        revision: i64,
    },
}

/// What one message of a watch stream said.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchMessage {
    /// The watch is in place.
    Created,
    /// Changes, and the store's revision after them.
    Events {
        revision: i64,
        events: Vec<WatchEvent>,
    },
    /// The start revision was compacted away: the caller must read everything again.
    Compacted,
    /// The server ended the watch for another reason.
    Canceled(String),
}

/// A client for a set of etcd members: each call tries the member that answered last, then
/// the others in turn.
pub struct EtcdClient {
    endpoints: Vec<String>,
    agent: ureq::Agent,
    watch_agent: ureq::Agent,
    last_good: AtomicUsize,
}

/// Bounds one key-value call (connect and each read): a registration waits at most this long
/// per member before it answers 503.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// A watch that brings nothing for this long is re-made (a quiet stream is not an error; a
/// dead member is found within this bound even without a reset).
pub const WATCH_IDLE: Duration = Duration::from_secs(5);

impl EtcdClient {
    pub fn new(endpoints: &[String]) -> EtcdClient {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(1))
            .timeout(CALL_TIMEOUT)
            .build();
        let watch_agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(1))
            .timeout_read(WATCH_IDLE)
            .max_idle_connections(0)
            .build();
        EtcdClient {
            endpoints: endpoints
                .iter()
                .map(|e| e.trim_end_matches('/').to_owned())
                .collect(),
            agent,
            watch_agent,
            last_good: AtomicUsize::new(0),
        }
    }

    /// POSTs `body` to `path` with `agent`, at each member in turn from the one that answered
    /// last: the first answer. A 5xx (no leader, stopping) or a failed connection moves on to
    /// the next member; another status is etcd refusing the request.
    fn post(
        &self,
        agent: &ureq::Agent,
        path: &str,
        body: &Value,
    ) -> Result<ureq::Response, EtcdError> {
        let n = self.endpoints.len().max(1);
        let first = self.last_good.load(Ordering::Relaxed);
        let mut errors = Vec::new();
        for at in (0..n).map(|i| (first + i) % n) {
            let Some(base) = self.endpoints.get(at) else {
                break;
            };
            match agent.post(&format!("{base}{path}")).send_json(body) {
                Ok(response) => {
                    self.last_good.store(at, Ordering::Relaxed);
                    return Ok(response);
                }
                Err(ureq::Error::Status(code, response)) => {
                    let text = response.into_string().unwrap_or_default();
                    if code >= 500 {
                        errors.push(format!("{base}: {code} {}", text.trim()));
                        continue;
                    }
                    return Err(EtcdError::Protocol(format!(
                        "{path}: {code} {}",
                        text.trim()
                    )));
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(EtcdError::Unreachable(errors.join("; ")))
    }

    /// A key-value call: its JSON answer.
    fn call(&self, path: &str, body: &Value) -> Result<Value, EtcdError> {
        self.post(&self.agent, path, body)?
            .into_json::<Value>()
            .map_err(|e| EtcdError::Protocol(format!("{path}: {e}")))
    }

    /// The value of `key` (with its revision) and the store's revision.
    pub fn get(&self, key: &[u8]) -> Result<(Option<Kv>, i64), EtcdError> {
        let answer = self.call("/v3/kv/range", &json!({ "key": B64.encode(key) }))?;
        let kv = kvs(&answer)?.into_iter().next();
        Ok((kv, header_revision(&answer)?))
    }

    /// Every key under `prefix`, and the store's revision they were read at.
    pub fn get_prefix(&self, prefix: &[u8]) -> Result<(Vec<Kv>, i64), EtcdError> {
        let answer = self.call(
            "/v3/kv/range",
            &json!({ "key": B64.encode(prefix), "range_end": B64.encode(prefix_end(prefix)) }),
        )?;
        Ok((kvs(&answer)?, header_revision(&answer)?))
    }

    /// Writes `value` at `key` if the key's last change is still `expected` (0: the key must
    /// not exist), in one transaction. `Ok(None)` when another writer came first; else the
    /// revision of this write.
    pub fn put_if(
        &self,
        key: &[u8],
        value: &[u8],
        expected: i64,
    ) -> Result<Option<i64>, EtcdError> {
        let put = json!({ "request_put": { "key": B64.encode(key), "value": B64.encode(value) } });
        self.txn_if(key, expected, put)
    }

    /// Writes `value` at `key` unconditionally, attached to `lease` (0: none), so that the key
    /// goes when the lease expires. The revision of this write.
    pub fn put(&self, key: &[u8], value: &[u8], lease: i64) -> Result<i64, EtcdError> {
        let mut body = json!({ "key": B64.encode(key), "value": B64.encode(value) });
        if lease != 0 {
            body["lease"] = json!(lease.to_string());
        }
        header_revision(&self.call("/v3/kv/put", &body)?)
    }

    /// A new lease of `ttl_s` seconds: its id.
    pub fn grant(&self, ttl_s: u64) -> Result<i64, EtcdError> {
        let answer = self.call("/v3/lease/grant", &json!({ "TTL": ttl_s.to_string() }))?;
        answer["ID"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| answer["ID"].as_i64())
            .ok_or_else(|| EtcdError::Protocol(format!("lease grant: no ID in {answer}")))
    }

    /// The store's revision now.
    pub fn revision(&self, prefix: &[u8]) -> Result<i64, EtcdError> {
        let answer = self.call(
            "/v3/kv/range",
            &json!({ "key": B64.encode(prefix), "range_end": B64.encode(prefix_end(prefix)), "count_only": true }),
        )?;
        header_revision(&answer)
    }

    /// Deletes `key` if its last change is still `expected`, in one transaction.
    pub fn delete_if(&self, key: &[u8], expected: i64) -> Result<Option<i64>, EtcdError> {
        let delete = json!({ "request_delete_range": { "key": B64.encode(key) } });
        self.txn_if(key, expected, delete)
    }

    fn txn_if(&self, key: &[u8], expected: i64, op: Value) -> Result<Option<i64>, EtcdError> {
        let answer = self.call(
            "/v3/kv/txn",
            &json!({
                "compare": [{
                    "key": B64.encode(key),
                    "target": "MOD",
                    "result": "EQUAL",
                    "mod_revision": expected.to_string(),
                }],
                "success": [op],
            }),
        )?;
        let succeeded = answer["succeeded"].as_bool().unwrap_or(false);
        Ok(succeeded.then_some(header_revision(&answer)?))
    }

    /// Opens a watch on every key under `prefix` from `start_revision`, at the member that
    /// answered last (or the next that answers).
    pub fn watch(&self, prefix: &[u8], start_revision: i64) -> Result<Watch, EtcdError> {
        let body = json!({ "create_request": {
            "key": B64.encode(prefix),
            "range_end": B64.encode(prefix_end(prefix)),
            "start_revision": start_revision.to_string(),
        }});
        let response = self.post(&self.watch_agent, "/v3/watch", &body)?;
        Ok(Watch {
            lines: BufReader::new(Box::new(response.into_reader())),
        })
    }
}

/// An open watch stream: one JSON message per line.
pub struct Watch {
    lines: BufReader<Box<dyn Read + Send + Sync>>,
}

impl Watch {
    /// The next message. `Err(Unreachable)` when the stream broke or stayed quiet for
    /// [`WATCH_IDLE`] (the caller opens it again from its revision).
    pub fn next_message(&mut self) -> Result<WatchMessage, EtcdError> {
        let mut line = String::new();
        // A message longer than this is not one of etcd's (a record is a few KiB).
        let n = (&mut self.lines)
            .take(16 << 20)
            .read_line(&mut line)
            .map_err(|e| EtcdError::Unreachable(format!("watch stream: {e}")))?;
        if n == 0 {
            return Err(EtcdError::Unreachable("watch stream ended".into()));
        }
        parse_watch_message(&line)
    }
}

/// One line of a watch stream, read.
pub fn parse_watch_message(line: &str) -> Result<WatchMessage, EtcdError> {
    let message: Value = serde_json::from_str(line.trim())
        .map_err(|e| EtcdError::Protocol(format!("watch message: {e}")))?;
    if let Some(error) = message.get("error") {
        return Ok(WatchMessage::Canceled(error.to_string()));
    }
    let result = &message["result"];
    if int(&result["compact_revision"])? > 0 {
        return Ok(WatchMessage::Compacted);
    }
    if result["canceled"].as_bool() == Some(true) {
        let reason = result["cancel_reason"]
            .as_str()
            .unwrap_or("canceled")
            .to_owned();
        return Ok(WatchMessage::Canceled(reason));
    }
    if result["created"].as_bool() == Some(true) {
        return Ok(WatchMessage::Created);
    }
    let revision = int(&result["header"]["revision"])?;
    let mut events = Vec::new();
    for event in result["events"].as_array().into_iter().flatten() {
        let kv = kv(&event["kv"])?;
        events.push(match event["type"].as_str() {
            Some("DELETE") => WatchEvent::Delete {
                key: kv.key,
                revision: kv.mod_revision,
            },
            _ => WatchEvent::Put(kv),
        });
    }
    Ok(WatchMessage::Events { revision, events })
}

/// `message` as etcd 3.4's gateway writes it on a watch stream (one line, without its end):
/// what [`parse_watch_message`] reads back to the same message.
pub fn encode_watch_message(message: &WatchMessage) -> String {
    let result = match message {
        WatchMessage::Created => json!({ "header": {}, "created": true }),
        WatchMessage::Compacted => {
            json!({ "header": {}, "canceled": true, "compact_revision": "1" })
        }
        WatchMessage::Canceled(reason) => json!({ "canceled": true, "cancel_reason": reason }),
        WatchMessage::Events { revision, events } => {
            let events: Vec<Value> = events
                .iter()
                .map(|e| match e {
                    WatchEvent::Put(kv) => json!({ "kv": {
                        "key": B64.encode(&kv.key),
                        "value": B64.encode(&kv.value),
                        "mod_revision": kv.mod_revision.to_string(),
                    }}),
                    WatchEvent::Delete { key, revision } => json!({ "type": "DELETE", "kv": {
                        "key": B64.encode(key),
                        "mod_revision": revision.to_string(),
                    }}),
                })
                .collect();
            json!({ "header": { "revision": revision.to_string() }, "events": events })
        }
    };
    json!({ "result": result }).to_string()
}

/// The end of the key range that holds every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn header_revision(answer: &Value) -> Result<i64, EtcdError> {
    int(&answer["header"]["revision"])
}

fn kvs(answer: &Value) -> Result<Vec<Kv>, EtcdError> {
    answer["kvs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(kv)
        .collect()
}

fn kv(v: &Value) -> Result<Kv, EtcdError> {
    Ok(Kv {
        key: bytes(&v["key"])?,
        value: bytes(&v["value"])?,
        mod_revision: int(&v["mod_revision"])?,
    })
}

/// A base64 field (absent: empty).
fn bytes(v: &Value) -> Result<Vec<u8>, EtcdError> {
    match v.as_str() {
        None => Ok(Vec::new()),
        Some(s) => B64
            .decode(s)
            .map_err(|e| EtcdError::Protocol(format!("base64: {e}"))),
    }
}

/// A 64-bit integer field: a string, or a number (absent: 0).
fn int(v: &Value) -> Result<i64, EtcdError> {
    match v {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| EtcdError::Protocol(format!("not an integer: {n}"))),
        Value::String(s) => s
            .parse()
            .map_err(|_| EtcdError::Protocol(format!("not an integer: {s:?}"))),
        other => Err(EtcdError::Protocol(format!("not an integer: {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_ends_after_its_last_key() {
        assert_eq!(prefix_end(b"/upgate/apps/"), b"/upgate/apps0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }

    #[test]
    fn watch_messages_read_as_etcd_3_4_writes_them() {
        let created = r#"{"result":{"header":{"revision":"2"},"created":true}}"#;
        assert_eq!(parse_watch_message(created).unwrap(), WatchMessage::Created);
        let events = r#"{"result":{"header":{"revision":"7"},"events":[{"kv":{"key":"YQ==","mod_revision":"6","value":"e30="}},{"type":"DELETE","kv":{"key":"Yg==","mod_revision":"7"}}]}}"#;
        assert_eq!(
            parse_watch_message(events).unwrap(),
            WatchMessage::Events {
                revision: 7,
                events: vec![
                    WatchEvent::Put(Kv {
                        key: b"a".to_vec(),
                        value: b"{}".to_vec(),
                        mod_revision: 6
                    }),
                    WatchEvent::Delete {
                        key: b"b".to_vec(),
                        revision: 7
                    },
                ],
            }
        );
        let compacted =
            r#"{"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"2"}}"#;
        assert_eq!(
            parse_watch_message(compacted).unwrap(),
            WatchMessage::Compacted
        );
        assert!(parse_watch_message("not json").is_err());
        assert!(parse_watch_message(r#"{"result":{"header":{"revision":"x"}}}"#).is_err());
    }
}
