//! Registering an application's callbacks with a node (patent steps 301-302):
//! `POST /upload/register` with a JSON body, optionally with the admin token.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::agent::{agent, from_ureq, node_url, read_body};
use super::error::{ClientError, Refusal};

/// What to register.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Registration {
    pub appid: String,
    pub callback_url_pre: String,
    pub callback_url_post: String,
    /// Hosts (`host` or `host:port`) the app's clients may name in callback headers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub callback_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// Ask for a new secret (the old one keeps signing too for the node's rotation window).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rotate_secret: bool,
    /// Origins (`http://host:port`) whose pages may upload to and download from the node.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cors_origins: Vec<String>,
    /// `require` or `optional`: whether this app's raw uploads need `Expect: 100-continue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
}

/// The node's answer.
#[derive(Debug, Clone)]
pub struct Registered {
    pub appid: String,
    /// `whsec_…`: shown only when the node created or rotated it.
    pub secret: Option<String>,
    /// The answer as received.
    pub body: String,
}

/// Registers `reg` with the node at `server` (`http://host:port` or `https://…`, any path is
/// ignored). `token` is the node's `admin_token`; without one only loopback clients may
/// register. An `https://` node's certificate must chain to the system's trust store.
pub fn register(
    server: &str,
    reg: &Registration,
    token: Option<&str>,
    timeout: Duration,
) -> Result<Registered, ClientError> {
    register_with_ca(server, reg, token, timeout, None)
}

/// [`register`], with an `https://` node's certificate checked against the CAs of the PEM
/// file `cacert` instead of the system's store.
pub fn register_with_ca(
    server: &str,
    reg: &Registration,
    token: Option<&str>,
    timeout: Duration,
    cacert: Option<&Path>,
) -> Result<Registered, ClientError> {
    let mut url = node_url(server, "server URL")?;
    url.set_path("/upload/register");
    url.set_query(None);
    let agent = agent(&url, timeout, cacert)?;
    let mut request = agent.post(url.as_str());
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let target = url.authority().to_string();
    match request.send_json(reg) {
        Ok(resp) => {
            let status = resp.status();
            let body = read_body(resp).map_err(|source| ClientError::Network {
                during: "reading the registration answer",
                source,
            })?;
            let json: Value = serde_json::from_str(&body)
                .map_err(|e| ClientError::Protocol(format!("registration answer: {e}")))?;
            if !(200..300).contains(&status) {
                return Err(ClientError::Refused(Refusal::from_answer(
                    status,
                    body.as_bytes(),
                    true,
                )));
            }
            Ok(Registered {
                appid: json["appid"].as_str().unwrap_or(&reg.appid).to_string(),
                secret: json["secret"].as_str().map(str::to_owned),
                body,
            })
        }
        Err(e) => Err(from_ureq(e, target, "registering")),
    }
}
