//! Resumable uploads (contract "Resumable uploads"): one file arriving in several requests,
//! each of which may break and be resumed from the last acknowledged offset. The patent's
//! steps hold for every request, not only the first: the app is asked before *each* append's
//! body is read.
//!
//! | step | patent | here |
//! |---|---|---|
//! | creation: receive conditions, first info → pre-callback, partial body begun | 202–204 / 304–306 | [`tus`] `create` → [`begin`] |
//! | each append: pre-callback with `offset`/`length` (unless `valid_for_s` covers it) | 203 / 305 | [`append`] |
//! | each append: body → the partial body at its offset (splice, or registered buffers) | 205 / 307 | [`append`] |
//! | each append: bytes synced, then the offset recorded, then `204` | 205 / 307 | [`append`] |
//! | completion: commit exactly like a whole upload, post-callback once | 205–206 / 307–308 | [`append`] → `phases::commit` |
//!
//! | file | owns |
//! |---|---|
//! | `tus.rs` | the tus 1.0 routes: discovery, creation, `HEAD`, `PATCH`, `DELETE` |
//! | `concat.rs` | tus concatenation: a final upload made of partial ones |
//! | `ietf.rs` | IETF resumable uploads: creation on a file's address, the upload resource |
//! | `headers.rs` | the protocol fields read from heads |
//! | `error.rs` | [`ResumableError`]: the refusals these protocols add |
//! | `sweep.rs` | expiry of abandoned uploads |
//!
//! Records (`crate::registry::ResumableRecord`) live on the node that took the upload; the
//! bytes are the store's partial bodies. Resumable uploads use the app's *registered*
//! callbacks, read again at each append (an upload outlives any one request, and a
//! re-registration must reach its later appends).

mod concat;
mod error;
pub mod headers;
pub mod ietf;
pub mod sweep;
pub mod tus;

pub use error::ResumableError;

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::app::App;
use crate::clock;
use crate::http::Response;
use crate::registry::{AppRecord, ResumableRecord, ResumableStore};
use crate::server::{BodyPlan, Exchange, Step, Timings};
use crate::storage::{path, ObjectStore, UploadHandle};

use super::condition::{self, Refusal};
use super::context::{self, Protocol};
use super::model::{Append, UploadRequest};
use super::phases;
use super::reply::FlowError;
use crate::http::{Checksum, ChecksumAlgorithm};

/// The uploads some request of this node is appending to: a second append to one of them
/// gets 409 `upload_busy` and never interleaves its bytes with the first's.
static APPENDING: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Holds an upload for one append; released when dropped.
struct Appending(String);

impl Appending {
    fn hold(id: &str) -> Result<Appending, ResumableError> {
        let mut held = APPENDING.lock().unwrap_or_else(|p| p.into_inner());
        if !held.insert(id.to_owned()) {
            return Err(ResumableError::Busy);
        }
        Ok(Appending(id.to_owned()))
    }
}

impl Drop for Appending {
    fn drop(&mut self) {
        let mut held = APPENDING.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.0);
    }
}

/// The app's registration: resumable uploads need one (their callbacks are registered).
pub(crate) fn registration(app: &App, appid: &str) -> Result<AppRecord, FlowError> {
    if !crate::registry::valid_appid(appid) {
        return Err(Refusal::BadAppid("appid must be 1-64 of A-Z a-z 0-9 _ -").into());
    }
    app.registry
        .get(appid)
        .map_err(FlowError::Registry)?
        .ok_or_else(|| {
            Refusal::UnknownAppid("the appid is not registered (resumable uploads need one)").into()
        })
}

/// The upload `id` of `appid`, if it is there and not expired.
pub(crate) fn record_of(app: &App, appid: &str, id: &str) -> Result<ResumableRecord, FlowError> {
    let rec = app
        .registry
        .resumables()
        .get(id)
        .map_err(FlowError::Registry)?
        .filter(|r| r.appid == appid)
        .ok_or(ResumableError::NotFound)?;
    unexpired(rec)
}

/// The record, unless its upload expired (410 until the sweep removes it).
pub(crate) fn unexpired(rec: ResumableRecord) -> Result<ResumableRecord, FlowError> {
    if rec.expired(clock::unix_ms()) {
        return Err(ResumableError::Expired.into());
    }
    Ok(rec)
}

/// The phases' view of the upload, for this request.
pub(crate) fn request_of(
    ex: &Exchange<'_>,
    record: &AppRecord,
    rec: &ResumableRecord,
    protocol: Protocol,
) -> Result<UploadRequest, FlowError> {
    let target = path::of_text(&rec.appid, &rec.path).map_err(Refusal::BadPath)?;
    let (pre, post) = condition::registered_callbacks(record);
    // Every request of a resumable upload is asked of the app (creation and each append):
    // an app whose registration names no pre-callback (or no longer does) cannot take one.
    if pre.is_none() {
        return Err(
            Refusal::UnknownAppid("no pre-upload callback is registered for this appid").into(),
        );
    }
    Ok(UploadRequest {
        secrets: record.secrets_for_signing(clock::unix_secs()),
        target,
        size: rec.length,
        limit: rec.limit,
        content_type: rec.content_type.clone(),
        upload_id: rec.id.clone(),
        client_ip: crate::upload::context::client_ip_of(ex),
        pre,
        post,
        request: context::request_info(ex.head(), record.forwarded_headers(), protocol),
        metadata: rec.metadata.clone(),
        append: None,
        valid_for_s: None,
        quota: None,
    })
}

/// [`request_of`] for a creation, shaped by the request's signed upload token if it carries one.
pub(crate) fn creation_request(
    ex: &Exchange<'_>,
    record: &AppRecord,
    rec: &ResumableRecord,
    protocol: Protocol,
) -> Result<UploadRequest, FlowError> {
    let mut req = request_of(ex, record, rec, protocol)?;
    if let Some(tok) = super::token::from_head(ex.head()) {
        let policy = super::token::verify(&tok, Some(record))?;
        super::token::apply(&policy, &mut req)?;
    }
    Ok(req)
}

/// When an upload untouched since `now_ms` expires.
pub(crate) fn expiry_from(app: &App, now_ms: u64) -> u64 {
    now_ms.saturating_add(app.config.resumable_expiry_s.saturating_mul(1000))
}

/// Begins the partial body of a new upload and records it (flushed under `fsync`): after this
/// the upload exists, across restarts.
pub(crate) async fn begin(app: &App, rec: &ResumableRecord) -> Result<(), FlowError> {
    let sink = app
        .store
        .begin_partial(&rec.id)
        .await
        .map_err(phases::storage_error)?;
    drop(sink);
    if let Err(e) = app
        .registry
        .resumables()
        .put_async(rec, app.config.fsync)
        .await
    {
        let _ = app.store.discard(&rec.id).await;
        return Err(FlowError::Registry(e));
    }
    Ok(())
}

/// The creation's pre-callback (203/305): the first file info (offset 0, this request's bytes)
/// to the app, whose answer shapes the upload's record (path, type, metadata, limit, and the
/// `valid_for_s` that lets later appends skip the call).
pub(crate) async fn ask_at_creation(
    ex: &Exchange<'_>,
    app: &App,
    req: &mut UploadRequest,
    rec: &mut ResumableRecord,
    t: &mut Timings,
) -> Result<(), FlowError> {
    let info = ex.head().info();
    req.append = Some(Append {
        offset: 0,
        length: info.content_length().filter(|_| info.has_body()),
    });
    t.timed(Step::PreCallback, phases::pre_callback(app, req))
        .await?;
    rec.path = req.target.rel.clone();
    rec.content_type = req.content_type.clone();
    rec.metadata = req.metadata.clone();
    rec.limit = req.limit;
    if let Some(s) = req.valid_for_s {
        rec.pre_valid_until_ms = rec.created_ms.saturating_add(s.saturating_mul(1000));
    }
    req.append = None;
    Ok(())
}

/// What an append achieved.
pub(crate) enum Appended {
    /// Bytes added; the upload goes on.
    Partial,
    /// The last bytes arrived: the file is stored and visible, its notification made (or
    /// queued: the outbox retries it). The answer a whole upload of the file would get.
    Complete(Box<Response>),
}

/// How one append is taken.
pub(crate) struct How {
    /// The client's `Upload-Checksum` for this append's bytes.
    pub checksum: Option<Checksum>,
    /// The app was just asked (at creation): no second pre-callback for the same bytes.
    pub asked: bool,
    pub ending: Ending,
}

/// Where an upload ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// At its length (tus): the append that reaches it completes the upload.
    AtLength,
    /// Where the client says (IETF `Upload-Complete`): `true` when this request's body is the
    /// upload's last bytes; with `false`, still at a known length once reached.
    Said(bool),
}

/// Appends this request's body to the upload at its offset (the caller checked the offset):
///
/// 1. one append at a time per upload (409 `upload_busy`);
/// 2. the pre-callback with `offset` and `length`, unless a recent answer's `valid_for_s`
///    covers it (`asked`: the creation just asked), before any body byte is read;
/// 3. the body into the partial body at the offset, spliced when it has a `Content-Length`
///    and no checksum to compute;
/// 4. a checksum compared (460, the bytes not acknowledged);
/// 5. the bytes synced (`fsync`), then the new offset recorded, then the answer; bytes that
///    arrived before a broken connection are kept and recorded the same way (not those of a
///    checksummed append: nothing vouches for them);
/// 6. at the upload's length: committed like a whole upload, post-callback once.
pub(crate) async fn append(
    ex: &mut Exchange<'_>,
    app: &App,
    rec: &mut ResumableRecord,
    mut req: UploadRequest,
    how: How,
    t: &mut Timings,
) -> Result<Appended, FlowError> {
    let How {
        checksum,
        asked,
        ending,
    } = how;
    let _held = Appending::hold(&rec.id)?;
    let declared = ex.head().info().content_length();
    if let (Some(length), Some(n)) = (rec.length, declared) {
        if rec.offset.saturating_add(n) > length {
            return Err(ResumableError::PastLength { length }.into());
        }
    }
    let now = clock::unix_ms();
    req.append = Some(Append {
        offset: rec.offset,
        length: declared,
    });
    if !asked && now >= rec.pre_valid_until_ms {
        let target = req.target.clone();
        t.timed(Step::PreCallback, phases::pre_callback(app, &mut req))
            .await?;
        // The upload's place was fixed at its creation.
        req.target = target;
        if let Some(s) = req.valid_for_s {
            rec.pre_valid_until_ms = now.saturating_add(s.saturating_mul(1000));
        }
        let end = rec.length.unwrap_or(rec.offset + declared.unwrap_or(0));
        if end > req.limit {
            return Err(Refusal::TooLarge {
                size: end,
                limit: req.limit,
            }
            .into());
        }
    }

    let start = rec.offset;
    // Reopened, and the append's declared bytes reserved, before the body is asked for: a
    // full disk answers 507 before `100 Continue`, as for a whole upload.
    let mut sink = app
        .store
        .resume(&rec.id, start)
        .await
        .map_err(phases::storage_error)?
        .ok_or(ResumableError::NotFound)?;
    let limit = rec.length.unwrap_or(req.limit).min(req.limit);
    if let Some(n) = declared {
        // No more than the body may bring: one past the limit gets 413 as it arrives.
        let room = limit.saturating_sub(start);
        sink.reserve(n.min(room))
            .await
            .map_err(phases::storage_error)?;
    }
    ex.accept_body().await.map_err(FlowError::Body)?;
    let mut digest = checksum.as_ref().map(|c| Digest::new(c.algorithm()));
    let plan = BodyPlan {
        splice: app.config.zero_copy && digest.is_none(),
        limit,
    };
    let mut seen = |bytes: &[u8]| {
        if let Some(d) = digest.as_mut() {
            d.update(bytes);
        }
    };
    let received = t
        .timed(
            Step::Body,
            ex.receive_into(&mut sink, plan, &mut seen, None),
        )
        .await;
    if let Err(e) = received {
        if checksum.is_none() && sink.written() > start {
            // What arrived before the break counts: the client resumes after it.
            let _ = acknowledge(app, rec, &sink).await;
        }
        return Err(phases::receive_error(e));
    }
    if let (Some(d), Some(c)) = (digest, &checksum) {
        // The bytes stay unacknowledged: the next append at this offset overwrites them.
        c.verify(&d.finish()).map_err(ResumableError::Protocol)?;
    }
    rec.expires_ms = expiry_from(app, now);
    let written = sink.written();
    let complete = match ending {
        // A known length reached completes the upload whatever the request said: no byte
        // could follow (tus-js-client 4.3.1 sends a stream's last append with `?0`).
        Ending::AtLength | Ending::Said(false) => rec.length == Some(written),
        Ending::Said(true) => match rec.length {
            Some(length) if length != written => {
                acknowledge(app, rec, &sink).await?;
                return Err(ResumableError::LengthConflict(format!(
                    "the upload ended at {written} bytes, its length is {length}"
                ))
                .into());
            }
            _ => true,
        },
    };
    if complete && !rec.partial {
        rec.offset = written;
        rec.length = Some(written);
        req.size = rec.length;
        let commit = phases::commit(app, &req, sink, None);
        let committed = t.timed(Step::Commit, commit).await;
        // Committed or lost (the partial body is gone either way): the record goes.
        let _ = app.registry.resumables().remove_async(&rec.id, false).await;
        let (stored, note) = committed?;
        let notified = t
            .timed(Step::PostCallback, phases::post_callback(app, &req, note))
            .await;
        crate::metrics::resumable_completed();
        let answer = super::reply::created(&req, &stored, notified);
        return Ok(Appended::Complete(Box::new(answer)));
    }
    acknowledge(app, rec, &sink).await?;
    Ok(Appended::Partial)
}

/// Makes the bytes written so far durable (`fsync`), then records them as the offset.
async fn acknowledge(
    app: &App,
    rec: &mut ResumableRecord,
    sink: &impl UploadHandle,
) -> Result<(), FlowError> {
    if app.config.fsync {
        sink.sync().await.map_err(phases::storage_error)?;
    }
    rec.offset = sink.written();
    app.registry
        .resumables()
        .put_async(rec, app.config.fsync)
        .await
        .map_err(FlowError::Registry)
}

/// Ends an upload on the client's request (tus termination, IETF cancel): its record, then
/// its partial body. False when there was none.
pub(crate) async fn terminate(app: &App, id: &str) -> Result<bool, FlowError> {
    let _held = Appending::hold(id)?;
    let removed = app
        .registry
        .resumables()
        .remove_async(id, app.config.fsync)
        .await
        .map_err(FlowError::Registry)?;
    let _ = app.store.discard(id).await;
    Ok(removed)
}

/// The digest an append's `Upload-Checksum` asks for, computed as its bytes pass.
enum Digest {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Md5(md5::Md5),
}

impl Digest {
    fn new(algorithm: ChecksumAlgorithm) -> Digest {
        use sha2::Digest as _;
        match algorithm {
            ChecksumAlgorithm::Sha1 => Digest::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => Digest::Sha256(sha2::Sha256::new()),
            ChecksumAlgorithm::Md5 => Digest::Md5(md5::Md5::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest as _;
        match self {
            Digest::Sha1(d) => d.update(bytes),
            Digest::Sha256(d) => d.update(bytes),
            Digest::Md5(d) => d.update(bytes),
        }
    }

    fn finish(self) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            Digest::Sha1(d) => d.finalize().to_vec(),
            Digest::Sha256(d) => d.finalize().to_vec(),
            Digest::Md5(d) => d.finalize().to_vec(),
        }
    }
}
