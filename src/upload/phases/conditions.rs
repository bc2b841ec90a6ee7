//! Phase 202/304: the receive conditions, on the head alone.

use crate::app::App;
use crate::config::Checksum;
use crate::quota::{Ask, Limits};
use crate::registry::{valid_appid, AppRecord};
use crate::server::Exchange;
use crate::storage::{path, ObjectStore, Target};
use crate::upload::digest::Claims;
use crate::upload::model::UploadRequest;
use crate::upload::FlowError;
use crate::upload::Refusal;
use crate::upload::{condition, token};

/// A request that met every receive condition.
pub(crate) struct Admitted {
    pub req: UploadRequest,
    /// The digests the client claims, when `checksum = "sha256"` (checked after the body).
    pub claims: Option<Claims>,
}

/// Checks the head: appid, registration or allowed header-carried callbacks, path, size,
/// expectation ([`condition::check`]); with `checksum = "sha256"`, that a digest the client
/// sends parses (400 `bad_digest` before the pre-callback and any `100 Continue`); with
/// `overwrite = false`, that nothing is stored at the path yet (409). Names the upload (a new
/// upload id) and records its appid and id for the access log.
pub(crate) async fn receive_conditions(
    ex: &mut Exchange<'_>,
    app: &App,
) -> Result<Admitted, FlowError> {
    let appid = String::from_utf8_lossy(path::first_segment(ex.head().path_only())).into_owned();
    ex.access().appid = valid_appid(&appid).then(|| appid.clone());
    let record = registered(app, &appid)?;
    let policy = app.policy();
    // A signed upload token, when the request carries one (checked after the head's syntax).
    let token = token::from_head(ex.head()).map(|t| token::verify(&t, record.as_ref()));
    let mut req = condition::check(
        ex.head(),
        &app.config,
        &policy,
        record.as_ref(),
        new_upload_id(),
        crate::upload::context::client_ip_of(ex),
        crate::upload::context::Protocol::Raw,
        matches!(token, Some(Ok(_))),
    )?;
    ex.access().upload_id = Some(req.upload_id.clone());
    if let Some(verified) = token {
        token::apply(&verified?, &mut req)?;
    }
    let claims = match app.config.checksum {
        Checksum::Sha256 => Some(Claims::from_head(ex.head()).map_err(Refusal::from)?),
        Checksum::None => None,
    };
    not_stored_yet(app, &req.target).await?;
    let size = req.size;
    admit(app, record.as_ref(), &mut req, size, true)?;
    Ok(Admitted { req, claims })
}

/// The app's quotas (contract "Quotas"), on the head, before the pre-callback and any
/// `100 Continue`: a slot among its concurrent uploads, a token of its rate (a `new_upload`,
/// not an append to a resumable one) and room for the declared size, all held by the request
/// until its commit (or given back when it ends otherwise). `bytes` is what this request
/// declares it brings (`None`: unknown); a body of unknown size may bring at most the room
/// left (413 at the byte past it), and the commit checks it once more.
pub(crate) fn admit(
    app: &App,
    record: Option<&AppRecord>,
    req: &mut UploadRequest,
    bytes: Option<u64>,
    new_upload: bool,
) -> Result<(), FlowError> {
    let limits = Limits::of(record);
    let appid = req.target.appid.clone();
    let ask = Ask { bytes, new_upload };
    let hold = app
        .quotas
        .admit(&appid, limits, ask, crate::clock::unix_ms())
        .map_err(|denied| {
            crate::metrics::quota_refused(denied.kind());
            Refusal::Quota(denied)
        })?;
    if bytes.is_none() {
        if let Some(room) = app.quotas.room(&appid, limits) {
            req.limit = req.limit.min(room);
        }
    }
    req.quota = Some(std::sync::Arc::new(hold));
    Ok(())
}

/// With `overwrite = false`, 409 when something is stored at `target` already.
pub(crate) async fn not_stored_yet(app: &App, target: &Target) -> Result<(), FlowError> {
    if !app.config.overwrite && app.store.head(target).await.ok().flatten().is_some() {
        return Err(FlowError::Exists);
    }
    Ok(())
}

/// The app's registration. An invalid appid has none: [`condition::check`] then answers 400
/// `bad_appid` (a registry lookup would fail, and that is not the node's fault).
fn registered(app: &App, appid: &str) -> Result<Option<AppRecord>, FlowError> {
    if !valid_appid(appid) {
        return Ok(None);
    }
    app.registry.get(appid).map_err(FlowError::Registry)
}

/// 128 random bits, hex.
pub(crate) fn new_upload_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        // Fall back to time and a counter: unique within this process.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b[..8].copy_from_slice(&crate::clock::unix_ms().to_be_bytes());
        b[8..].copy_from_slice(&n.to_be_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
