//! The upload method of patent CN103547339A for `POST`/`PUT /{appid}/{path}`, one phase per
//! step, top to bottom. The phases (`super::phases`) are shared with the other upload
//! protocols; this file is only their order.
//!
//! | step | patent | phase |
//! |---|---|---|
//! | receive conditions on the head | 202 / 304 | `phases::receive_conditions` |
//! | first file info → pre-upload callback | 203 / 305 | `phases::pre_callback` on the blocking pool |
//! | the sink, declared size reserved (507 before the 100) | 204 / 306 | `phases::open_sink` |
//! | `100 Continue` only after the app accepts | 204 / 306 | [`Exchange::accept_body`] |
//! | body → sink (digest checked with `checksum = "sha256"`) | 205 / 307 | `phases::receive_body` |
//! | second file info → outbox, then the object durable and visible | 205 / 307 | `phases::commit` |
//! | second file info → post-upload callback (first attempt) | 205 / 307 | `phases::post_callback` |
//! | completion response | 206 / 308 | [`reply::created`] |
//!
//! Each step's duration goes to the access log ([`Timings`]); every error to the one funnel,
//! [`crate::error::respond`].

use crate::app::App;
use crate::http::Response;
use crate::metrics;
use crate::server::{Exchange, Step, Timings};
use crate::storage::UploadHandle;

use super::model::{Notified, Stored, UploadRequest};
use super::phases;
use super::reply::{self, FlowError};

/// Handles `POST`/`PUT /{appid}/{path}`.
pub async fn handle_upload(ex: &mut Exchange<'_>, app: &App) -> Response {
    let _in_flight = metrics::InFlight::enter();
    let mut timings = Timings::default();
    let result = run(ex, app, &mut timings).await;
    reply::finish(ex, timings, result, |(req, stored, notified)| {
        reply::created(&req, &stored, notified)
    })
}

async fn run(
    ex: &mut Exchange<'_>,
    app: &App,
    t: &mut Timings,
) -> Result<(UploadRequest, Stored, Notified), FlowError> {
    // 202/304: the receive conditions, on the head alone.
    let phases::Admitted { mut req, claims } = phases::receive_conditions(ex, app).await?;

    // 203/305: the first file info to the pre-upload callback; the app may veto, or accept
    // and shape the upload (its limit, path, type, metadata).
    t.timed(Step::PreCallback, phases::pre_callback(app, &mut req))
        .await?;

    // 204/306: only now may the client send its body, once its sink exists with the declared
    // size reserved: a full disk answers 507 without a `100 Continue`.
    let sink = phases::open_sink(app, &req).await?;
    if let Err(e) = ex.accept_body().await {
        sink.abort().await;
        return Err(FlowError::Body(e));
    }

    // 205/307: the body into the sink; its second file info recorded in the outbox (durably,
    // while nothing is visible yet); then the object made durable and visible at once.
    let body = phases::receive_body(ex, app, &req, sink, claims);
    let (sink, sha256) = t.timed(Step::Body, body).await?;
    let commit = phases::commit(app, &req, sink, sha256);
    let (stored, note) = t.timed(Step::Commit, commit).await?;

    // 205/307: the second file info's first attempt; the outbox retries it until delivered.
    let notified = t
        .timed(Step::PostCallback, phases::post_callback(app, &req, note))
        .await;

    // 206/308: the completion response (rendered by `reply::created`).
    Ok((req, stored, notified))
}
