//! tus concatenation: a final upload made of finished partial uploads
//! (`Upload-Concat: final;<url> <url>…`), committed at its creation like a whole upload.
//!
//! Partial uploads (`Upload-Concat: partial`) are ordinary resumable uploads whose completion
//! commits nothing: their bodies wait here for a final upload that names them. The app is asked
//! at each partial's creation and before each of its appends, as for any upload, and once more
//! for the final upload, with the file's name and its whole length: that is the decision on the
//! file, and the post-callback follows it exactly once.
//!
//! Every part must be complete when the final upload is created (the tus extension
//! `concatenation-unfinished` is not offered): 400 `bad_upload_concat` otherwise.

use crate::app::App;
use crate::registry::ResumableRecord;
use crate::server::{Exchange, Step, Timings};
use crate::storage::ObjectStore;
use crate::upload::condition::Refusal;
use crate::upload::context::Protocol;
use crate::upload::model::Append;
use crate::upload::{phases, FlowError};

use super::{record_of, request_of, Appending, ResumableError};

/// The partial uploads a final upload names, in order, resolved to this app's records: each a
/// partial upload of `appid`, there, unexpired and complete.
pub(crate) fn parts_of(
    app: &App,
    appid: &str,
    urls: &[String],
) -> Result<Vec<ResumableRecord>, FlowError> {
    let mut parts = Vec::with_capacity(urls.len());
    for url in urls {
        let path = path_of(url);
        let id = match super::tus::split(path.as_bytes()) {
            Some((a, Some(id))) if a == appid => id,
            _ => {
                return Err(bad_concat(
                    "each part must be an upload of this app, /upload/tus/{appid}/{id}",
                ))
            }
        };
        let rec = record_of(app, appid, id)?;
        if !rec.partial {
            return Err(bad_concat(
                "a part is not a partial upload (Upload-Concat: partial)",
            ));
        }
        if !rec.is_complete() {
            return Err(bad_concat("a part is not complete yet"));
        }
        if parts.iter().any(|p: &ResumableRecord| p.id == rec.id) {
            return Err(bad_concat("a part is named twice"));
        }
        parts.push(rec);
    }
    Ok(parts)
}

/// Creates the final upload `rec` (its `length` the parts' total) from `parts`:
///
/// 1. the parts held, so no termination or expiry races the copy (409 `upload_busy`);
/// 2. the pre-callback on the whole file (offset 0, length the total);
/// 3. the parts' bodies copied, in order, into the file, committed like a whole upload;
/// 4. the post-callback once; the parts' records and bodies go.
pub(crate) async fn finish(
    ex: &mut Exchange<'_>,
    app: &App,
    rec: &ResumableRecord,
    parts: &[ResumableRecord],
    t: &mut Timings,
) -> Result<(), FlowError> {
    let _held: Vec<Appending> = parts
        .iter()
        .map(|p| Appending::hold(&p.id))
        .collect::<Result<_, _>>()?;
    let record = super::registration(app, &rec.appid)?;
    let mut req = request_of(ex, &record, rec, Protocol::Tus)?;
    phases::admit(app, Some(&record), &mut req, rec.length, true)?;
    req.append = Some(Append {
        offset: 0,
        length: rec.length,
    });
    t.timed(Step::PreCallback, phases::pre_callback(app, &mut req))
        .await?;
    let total = rec.length.unwrap_or(0);
    if total > req.limit {
        return Err(Refusal::TooLarge {
            size: total,
            limit: req.limit,
        }
        .into());
    }

    let ids: Vec<String> = parts.iter().map(|p| p.id.clone()).collect();
    let sink = app
        .store
        .concat_partials(&rec.id, &ids)
        .await
        .map_err(phases::storage_error)?
        .ok_or(ResumableError::NotFound)?;
    req.size = Some(total);
    let committed = t
        .timed(Step::Commit, phases::commit(app, &req, sink, None))
        .await;
    let (_stored, note) = committed?;
    for part in parts {
        let _ = app
            .registry
            .resumables()
            .remove_async(&part.id, false)
            .await;
        let _ = app.store.discard(&part.id).await;
    }
    t.timed(Step::PostCallback, phases::post_callback(app, &req, note))
        .await;
    crate::metrics::resumable_completed();
    Ok(())
}

/// The path of an upload URL: absolute (`http://host/upload/…`) or a path already.
fn path_of(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url,
    }
}

fn bad_concat(why: &'static str) -> FlowError {
    ResumableError::BadConcat(why).into()
}

#[cfg(test)]
mod tests {
    use super::path_of;

    #[test]
    fn a_part_s_url_may_be_absolute_or_a_path() {
        assert_eq!(path_of("http://n:8080/upload/tus/a/x"), "/upload/tus/a/x");
        assert_eq!(path_of("/upload/tus/a/x"), "/upload/tus/a/x");
        assert_eq!(path_of("https://n"), "");
    }
}
