//! The app's answer may shape the upload (contract "The app's answer may shape the upload"):
//! an accepting pre-callback answer can lower the size limit, move the file, set its content
//! type and attach metadata. An answer that asks for something invalid is the app's error
//! (502 `callback_failed`), never silently ignored.

use serde_json::Value;

use crate::callback::Veto;
use crate::storage::path::{self, Target};

use super::model::UploadRequest;
use super::Refusal;

/// The most bytes of `metadata` (serialised) an answer may attach.
pub const MAX_METADATA_BYTES: usize = 4096;
/// The longest content type an answer may set.
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;

/// What an accepting answer asked for; every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    pub max_bytes: Option<u64>,
    pub target: Option<Target>,
    pub content_type: Option<String>,
    pub metadata: Option<Value>,
    /// How long this decision covers later appends of a resumable upload.
    pub valid_for_s: Option<u64>,
}

impl Shape {
    /// Reads the shaping members of an accepting answer for an upload to `appid`.
    pub fn of_answer(answer: &Value, appid: &str) -> Result<Shape, Veto> {
        let bad = |detail: String| Veto::BadGateway {
            detail: format!("the application's answer {detail}"),
        };
        let mut shape = Shape::default();
        if let Some(v) = answer.get("max_bytes").filter(|v| !v.is_null()) {
            shape.max_bytes = Some(
                v.as_u64()
                    .ok_or_else(|| bad("has a max_bytes that is not a whole number".into()))?,
            );
        }
        if let Some(v) = answer.get("path").filter(|v| !v.is_null()) {
            let text = v
                .as_str()
                .ok_or_else(|| bad("has a path that is not a string".into()))?;
            shape.target = Some(
                path::of_text(appid, text)
                    .map_err(|e| bad(format!("has an invalid path {text:?}: {e}")))?,
            );
        }
        if let Some(v) = answer.get("content_type").filter(|v| !v.is_null()) {
            let text = v
                .as_str()
                .ok_or_else(|| bad("has a content_type that is not a string".into()))?;
            shape.content_type = Some(
                valid_content_type(text)
                    .ok_or_else(|| bad(format!("has an invalid content_type {text:?}")))?,
            );
        }
        if let Some(v) = answer.get("metadata").filter(|v| !v.is_null()) {
            if !v.is_object() {
                return Err(bad("has a metadata that is not an object".into()));
            }
            let len = v.to_string().len();
            if len > MAX_METADATA_BYTES {
                return Err(bad(format!(
                    "has {len} bytes of metadata; at most {MAX_METADATA_BYTES}"
                )));
            }
            shape.metadata = Some(v.clone());
        }
        if let Some(v) = answer.get("valid_for_s").filter(|v| !v.is_null()) {
            shape.valid_for_s = Some(
                v.as_u64()
                    .ok_or_else(|| bad("has a valid_for_s that is not a whole number".into()))?,
            );
        }
        Ok(shape)
    }

    /// Applies the shape to the upload: a lower limit (a declared size over it is 413, before
    /// any `100 Continue`), another path, another type, metadata (merged over a form's fields).
    pub fn apply(self, req: &mut UploadRequest) -> Result<(), Refusal> {
        if let Some(max) = self.max_bytes {
            req.limit = req.limit.min(max);
            if let Some(size) = req.size.filter(|&n| n > req.limit) {
                return Err(Refusal::TooLarge {
                    size,
                    limit: req.limit,
                });
            }
        }
        if let Some(target) = self.target {
            req.target = target;
        }
        if let Some(t) = self.content_type {
            req.content_type = t;
        }
        req.valid_for_s = self.valid_for_s;
        match (self.metadata, req.metadata.as_mut()) {
            (Some(Value::Object(extra)), Some(Value::Object(fields))) => fields.extend(extra),
            (Some(m), _) => req.metadata = Some(m),
            (None, _) => {}
        }
        Ok(())
    }
}

/// A media type safe to store and serve in a header: `type/subtype[; params]`, printable
/// ASCII, at most [`MAX_CONTENT_TYPE_BYTES`]; `None` otherwise.
pub fn valid_content_type(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty()
        || text.len() > MAX_CONTENT_TYPE_BYTES
        || !text.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return None;
    }
    let essence = text.split(';').next()?.trim();
    let (a, b) = essence.split_once('/')?;
    let token = |s: &str| !s.is_empty() && s.bytes().all(crate::http::is_tchar);
    (token(a) && token(b)).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_every_member() {
        let s = Shape::of_answer(
            &json!({"success":"true","max_bytes":1048576,"path":"avatars/7.png",
                    "content_type":"image/png","metadata":{"user":"7"}}),
            "app1",
        )
        .unwrap();
        assert_eq!(s.max_bytes, Some(1048576));
        assert_eq!(s.target.unwrap().rel, "avatars/7.png");
        assert_eq!(s.content_type.as_deref(), Some("image/png"));
        assert_eq!(s.metadata, Some(json!({"user":"7"})));
    }

    #[test]
    fn a_plain_accept_shapes_nothing() {
        let s = Shape::of_answer(&json!({"success":true}), "app1").unwrap();
        assert_eq!(s, Shape::default());
    }

    #[test]
    fn invalid_members_are_the_apps_error() {
        for bad in [
            json!({"success":"true","path":"../etc/passwd"}),
            json!({"success":"true","path":"a//b"}),
            json!({"success":"true","path":7}),
            json!({"success":"true","max_bytes":-1}),
            json!({"success":"true","max_bytes":"10"}),
            json!({"success":"true","content_type":"text/html\r\nX-Evil: 1"}),
            json!({"success":"true","content_type":"nonsense"}),
            json!({"success":"true","metadata":[1,2]}),
            json!({"success":"true","metadata":{"x":"y".repeat(5000)}}),
        ] {
            match Shape::of_answer(&bad, "app1") {
                Err(Veto::BadGateway { .. }) => {}
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
