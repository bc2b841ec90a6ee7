//! What the demo application knows: its appid, rules, secrets and where browsers upload, and
//! the uploads the node told it about (post-upload callbacks), de-duplicated by upload id. Shared by its connection threads.

use std::sync::{Mutex, RwLock};

use serde::Serialize;

use super::browser::Browser;
use super::rules::Rules;
use upgate_contract::SecondInfo;

/// One received notification, as the application keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct Upload {
    /// The second file info exactly as the node sent it.
    #[serde(flatten)]
    pub info: SecondInfo,
    /// The `webhook-id` it came with (the node's event id, stable across retries).
    pub webhook_id: String,
    /// When the application first received it (unix seconds).
    pub received_at: u64,
    /// How many deliveries of it arrived (retries after a lost answer count here).
    pub deliveries: u32,
}

/// The application's shared state.
pub struct State {
    pub appid: String,
    pub rules: Rules,
    secrets: RwLock<Vec<String>>,
    /// Set once the app knows its own address (after it bound its port).
    browser: RwLock<Browser>,
    uploads: Mutex<Vec<Upload>>,
}

impl State {
    pub fn new(appid: String, rules: Rules, secrets: Vec<String>) -> State {
        State {
            appid,
            rules,
            secrets: RwLock::new(secrets),
            browser: RwLock::new(Browser::default()),
            uploads: Mutex::new(Vec::new()),
        }
    }

    /// The secrets that verify callbacks (empty: every callback is refused).
    pub fn secrets(&self) -> Vec<String> {
        self.secrets
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Adds a secret (from a registration), keeping the ones already known.
    pub fn add_secret(&self, secret: String) {
        let mut s = self.secrets.write().unwrap_or_else(|p| p.into_inner());
        if !s.contains(&secret) {
            s.push(secret);
        }
    }

    /// Where browsers upload and which origins may ask for tokens.
    pub fn browser(&self) -> Browser {
        self.browser
            .read()
            .map(|b| b.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn set_browser(&self, browser: Browser) {
        *self.browser.write().unwrap_or_else(|p| p.into_inner()) = browser;
    }

    /// Records a notification; `false` when its upload id was already recorded (a retry).
    pub fn record(&self, info: SecondInfo, webhook_id: String) -> bool {
        let mut uploads = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = uploads
            .iter_mut()
            .find(|u| u.info.upload_id == info.upload_id)
        {
            known.deliveries += 1;
            return false;
        }
        uploads.push(Upload {
            info,
            webhook_id,
            received_at: super::unix_secs(),
            deliveries: 1,
        });
        true
    }

    /// The uploads, oldest first.
    pub fn uploads(&self) -> Vec<Upload> {
        self.uploads
            .lock()
            .map(|u| u.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use upgate_contract::SuccessTrue;

    fn info(id: &str) -> SecondInfo {
        SecondInfo {
            event: Default::default(),
            node_id: None,
            appid: "demo".into(),
            filename: "a.jpg".into(),
            path: "p/a.jpg".into(),
            size: 3,
            content_type: "image/jpeg".into(),
            upload_id: id.into(),
            success: SuccessTrue,
            url: "http://node/demo/p/a.jpg".into(),
            sha256: None,
            metadata: None,
        }
    }

    #[test]
    fn a_retried_notification_is_recorded_once() {
        let s = State::new("demo".into(), Rules::default(), vec![]);
        assert!(s.record(info("u1"), "evt1".into()));
        assert!(!s.record(info("u1"), "evt1".into()));
        assert!(s.record(info("u2"), "evt2".into()));
        let got = s.uploads();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].deliveries, 2);
        assert_eq!(got[1].info.upload_id, "u2");
    }

    #[test]
    fn secrets_accumulate_without_duplicates() {
        let s = State::new("demo".into(), Rules::default(), vec!["whsec_a".into()]);
        s.add_secret("whsec_b".into());
        s.add_secret("whsec_a".into());
        assert_eq!(s.secrets(), ["whsec_a", "whsec_b"]);
    }
}
