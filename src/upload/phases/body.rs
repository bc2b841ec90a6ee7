//! Phases 204–205 / 306–307: the upload's sink in the store, then the body into it.

use crate::app::App;
use crate::server::{BodyPlan, Demuxing, Exchange, ReceiveError};
use crate::storage::{is_disk_full, ObjectStore, Upload, UploadHandle};
use crate::upload::digest::{BodyDigest, Claims};
use crate::upload::model::UploadRequest;
use crate::upload::FlowError;

/// The upload's handle in the store, with a `Content-Length` body's size reserved: a store
/// without room answers 507 here, before `100 Continue`.
pub(crate) async fn open_sink(app: &App, req: &UploadRequest) -> Result<Upload, FlowError> {
    app.store
        .begin(&req.upload_id, req.size)
        .await
        .map_err(storage_error)
}

/// Reserves room for a body known only by a bound (a form's file part is at most its form's
/// `Content-Length`), so its blocks are allocated at once. A store without room for the bound
/// goes on without the reservation: the part itself may still fit. On another failure the
/// temporary file is removed.
pub(crate) async fn reserve_bound(mut sink: Upload, bound: u64) -> Result<Upload, FlowError> {
    match sink.reserve(bound).await {
        Err(e) if !is_disk_full(&e) => {
            sink.abort().await;
            Err(storage_error(e))
        }
        _ => Ok(sink),
    }
}

/// Streams the body into the sink ([`Exchange::receive_into`] picks the path per
/// byte: splice, registered buffers, or the connection's buffer). With `checksum = "sha256"`
/// the body is digested on its way and checked against the client's claims (400
/// `digest_mismatch`); returns the digest (hex) when computed. On any failure the temporary
/// file is removed.
pub(crate) async fn receive_body(
    ex: &mut Exchange<'_>,
    app: &App,
    req: &UploadRequest,
    mut sink: Upload,
    claims: Option<Claims>,
) -> Result<(Upload, Option<String>), FlowError> {
    let mut digest = claims.map(BodyDigest::new);
    // Spliced bytes never pass through the node, so a digest takes registered buffers.
    let plan = BodyPlan {
        splice: app.config.zero_copy && digest.is_none(),
        limit: req.limit,
    };
    let mut seen = |bytes: &[u8]| {
        if let Some(d) = digest.as_mut() {
            d.update(bytes);
        }
    };
    let received = ex.receive_into(&mut sink, plan, &mut seen, None).await;
    let checked = match received {
        Ok(()) => digest
            .map(BodyDigest::finish)
            .transpose()
            .map_err(|m| FlowError::Refused(m.into())),
        Err(e) => Err(receive_error(e)),
    };
    match checked {
        Ok(sha256) => Ok((sink, sha256)),
        Err(e) => {
            sink.abort().await;
            Err(e)
        }
    }
}

/// Streams a form's file part into the sink: `demux` picks the file's bytes out of the body
/// (starting with `leftover`, read while the fields were). With `zero_copy`, the middle of a
/// large file part is spliced and checked in place; the rest takes the registered buffers like
/// any body the node must see. The rest of the form must end properly (400 `bad_multipart`
/// otherwise, and the file is removed).
pub(crate) async fn receive_form_file(
    ex: &mut Exchange<'_>,
    app: &App,
    req: &UploadRequest,
    mut sink: Upload,
    mut demux: crate::upload::form::FileDemux,
    leftover: bytes::Bytes,
) -> Result<(Upload, Option<String>), FlowError> {
    let plan = BodyPlan {
        splice: app.config.zero_copy,
        limit: req.limit,
    };
    let demuxing = Demuxing {
        demux: &mut demux,
        leftover,
    };
    let received = ex
        .receive_into(&mut sink, plan, &mut |_| {}, Some(demuxing))
        .await;
    match received.map_err(receive_error) {
        Ok(()) => Ok((sink, None)),
        Err(e) => {
            sink.abort().await;
            Err(e)
        }
    }
}

pub(crate) fn receive_error(e: ReceiveError) -> FlowError {
    match e {
        ReceiveError::Body(e) => FlowError::Body(e),
        ReceiveError::File(e) => storage_error(e),
        ReceiveError::TooLarge(limit) => FlowError::TooLarge(limit),
        ReceiveError::Demux(why) => FlowError::BadForm(why),
    }
}

/// A storage failure: 507 for a full disk, 500 otherwise (the cause kept for the log).
pub(crate) fn storage_error(e: std::io::Error) -> FlowError {
    if is_disk_full(&e) {
        FlowError::DiskFull(e)
    } else {
        FlowError::Storage(e)
    }
}
