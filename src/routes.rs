//! What requests mean: the node's [`Handler`], [`Router`], picks a route from the path and
//! method and hands the exchange to that route's handler. The driver below knows only the
//! `Handler` trait; this file is where the handlers meet it.
//!
//! | path | GET / HEAD | POST / PUT | other |
//! |---|---|---|---|
//! | `/healthz`, `/readyz`, `/metrics` | [`crate::health`] | 405 | 405 |
//! | `/upload/register[/{appid}]` | [`crate::register::handler`] | the same | the same (405 inside) |
//! | `/upload/outbox/{appid}[/{event_id}[/retry]]` | [`crate::manage::outbox`] (list) | POST `…/retry` | `DELETE /{event_id}`; else 405 inside |
//! | `/upload/files/{appid}` | [`crate::manage::files`] (the app's files, a page at a time) | 405 | 405 |
//! | `/upload/form/{appid}` | 405 | POST: [`crate::upload::form`] | `OPTIONS`: [`crate::cors`]; else 405 |
//! | `/upload/tus/{appid}/[{id}]` | [`crate::upload::resumable::tus`] (HEAD) | the same (creation; `X-HTTP-Method-Override`) | `PATCH`, `DELETE`, `OPTIONS`: the same |
//! | `/upload/resumable/{id}` | [`crate::upload::resumable::ietf`] (HEAD) | 405 | `PATCH`, `DELETE`: the same |
//! | `/{appid}/{path}` | [`crate::download`] (signed URLs: `download::signed`) | [`crate::upload::flow`]; with `Upload-Complete`, an IETF creation ([`crate::upload::resumable::ietf`]) | `DELETE`: [`crate::manage::files`]; `OPTIONS`: [`crate::cors`]; else 405 |
//! | anything else | 404 | the upload flow (400 `bad_appid` / `bad_path`) | 404 |
//!
//! A request with an `Origin` to an app's path passes [`crate::cors`] first: preflights are
//! answered there, an origin the app does not list may not upload (403 `origin_not_allowed`),
//! and every answer to an origin it lists carries the CORS fields.

use std::sync::Arc;

use crate::app::App;
use crate::cors;
use crate::error::{respond, RouteError};
use crate::health;
use crate::http::{Expectation, Method, Response};
use crate::metrics::Route as Metric;

use crate::server::{Exchange, Handler};
use crate::upload::resumable::ietf;
use crate::upload::resumable::tus::PREFIX as TUS_PREFIX;

/// Largest body read and dropped from a request that should carry none.
const STRAY_BODY_MAX: u64 = 64 * 1024;

/// The node's routes.
pub struct Router {
    app: Arc<App>,
}

impl Router {
    pub fn new(app: Arc<App>) -> Self {
        Router { app }
    }
}

/// The routes a path can take.
enum Route {
    Health,
    Ready,
    Metrics,
    Register,
    Outbox,
    Files,
    Form,
    Tus,
    Resumable,
    File,
    NotFound,
}

impl Route {
    /// What the route is for CORS, when it belongs to an app.
    fn cors(&self) -> Option<cors::Kind> {
        match self {
            Route::Form => Some(cors::Kind::Form),
            Route::Tus => Some(cors::Kind::Tus),
            Route::File => Some(cors::Kind::File),
            _ => None,
        }
    }
}

/// The appid a route's path belongs to.
fn appid_of(path: &[u8]) -> &[u8] {
    let rest = path
        .strip_prefix(crate::upload::form::PREFIX.as_bytes())
        .or_else(|| path.strip_prefix(TUS_PREFIX.as_bytes()))
        .or_else(|| path.strip_prefix(b"/"))
        .unwrap_or(b"");
    rest.split(|&b| b == b'/').next().unwrap_or(b"")
}

fn route(path: &[u8]) -> Route {
    match path {
        b"/healthz" => return Route::Health,
        b"/readyz" => return Route::Ready,
        b"/metrics" => return Route::Metrics,
        _ => {}
    }
    if path == b"/upload/register" || path.starts_with(b"/upload/register/") {
        return Route::Register;
    }
    if path.starts_with(crate::manage::outbox::PREFIX.as_bytes()) {
        return Route::Outbox;
    }
    if let Some(appid) = path.strip_prefix(crate::manage::files::PREFIX.as_bytes()) {
        return match appid.contains(&b'/') {
            false => Route::Files,
            true => Route::NotFound,
        };
    }
    if path.starts_with(TUS_PREFIX.as_bytes()) {
        return Route::Tus;
    }
    if path.starts_with(ietf::PREFIX.as_bytes()) {
        return Route::Resumable;
    }
    if let Some(appid) = path.strip_prefix(crate::upload::form::PREFIX.as_bytes()) {
        return match appid.contains(&b'/') {
            false => Route::Form,
            true => Route::NotFound,
        };
    }
    // `/{appid}/{something}`: a stored file's address.
    let rest = path.strip_prefix(b"/").unwrap_or(b"");
    match rest.iter().position(|&b| b == b'/') {
        Some(i) if i > 0 => Route::File,
        _ => Route::NotFound,
    }
}

impl Handler for Router {
    async fn handle(&self, ex: &mut Exchange<'_>) -> Response {
        let method = ex.head().method();
        let r = route(ex.head().path_only());
        ex.access().route = metric_route(&r, method);
        if ex.head().info().expect == Expectation::Unsupported {
            ex.access().route = Metric::Other;
            return respond(ex.access(), &RouteError::ExpectationFailed);
        }
        // A body where none belongs (`GET` with `Content-Length: 5`) is read and dropped, up to
        // a bound, so the connection stays open; a bigger one ends it with a lingering close.
        if matches!(
            method,
            Method::Get | Method::Head | Method::Options | Method::Delete
        ) {
            ex.discard_body(STRAY_BODY_MAX).await;
        }
        let origin = cors::origin(ex.head()).map(str::to_owned);
        match (r.cors(), origin) {
            (Some(kind), Some(origin)) => self.cross_origin(ex, r, kind, &origin).await,
            // tus answers its own OPTIONS (discovery).
            (Some(kind), None) if method == Method::Options && !matches!(r, Route::Tus) => {
                cors::options(kind)
            }
            _ => self.dispatch(ex, r).await,
        }
    }
}

impl Router {
    /// A browser's request to an app's path: preflights answered, uploads from an origin the
    /// app does not list refused, and the answers to a listed origin made readable to it.
    async fn cross_origin(
        &self,
        ex: &mut Exchange<'_>,
        r: Route,
        kind: cors::Kind,
        origin: &str,
    ) -> Response {
        let method = ex.head().method();
        let asked = match method {
            Method::Options => ex
                .head()
                .value("access-control-request-method")
                .unwrap_or(b"")
                .to_vec(),
            _ => ex.head().method_str().as_bytes().to_vec(),
        };
        let upload = !matches!(&asked[..], b"GET" | b"HEAD");
        let record = self.record_of(ex);
        if !cors::allows(record.as_ref(), origin, upload) {
            if upload || method == Method::Options {
                return respond(ex.access(), &RouteError::OriginNotAllowed);
            }
            // A download for an origin the app does not list: served, unreadable to its script.
            return self.dispatch(ex, r).await;
        }
        if method == Method::Options {
            return cors::preflight(ex.head(), origin, kind);
        }
        let mut resp = self.dispatch(ex, r).await;
        cors::decorate(&mut resp, origin);
        resp
    }

    /// The registration of the app the request's path belongs to, if any.
    fn record_of(&self, ex: &Exchange<'_>) -> Option<crate::registry::AppRecord> {
        self.record_of_appid(appid_of(ex.head().path_only()))
    }

    fn record_of_appid(&self, appid: &[u8]) -> Option<crate::registry::AppRecord> {
        let appid = std::str::from_utf8(appid).ok()?;
        if !crate::registry::valid_appid(appid) {
            return None;
        }
        self.app.registry.get(appid).ok().flatten()
    }

    async fn dispatch(&self, ex: &mut Exchange<'_>, r: Route) -> Response {
        let method = ex.head().method();
        match (r, method) {
            (Route::Health, Method::Get | Method::Head) => health::healthz(),
            (Route::Ready, Method::Get | Method::Head) => health::readyz(ex, &self.app).await,
            (Route::Metrics, Method::Get | Method::Head) => health::metrics(&self.app),
            (Route::Health | Route::Ready | Route::Metrics, _) => not_allowed(ex, "GET, HEAD"),
            (Route::Outbox, _) => crate::manage::outbox::handle(ex, &self.app).await,
            (Route::Register, _) => {
                let files = (&self.app.store, &*self.app.quotas, self.app.origin());
                crate::register::handler::handle_with_files(ex, &self.app.registry, files).await
            }
            (Route::Files, Method::Get | Method::Head) => {
                crate::manage::files::list(ex, &self.app).await
            }
            (Route::Files, _) => not_allowed(ex, "GET, HEAD"),
            (Route::Form, Method::Post) => crate::upload::form::handle_form(ex, &self.app).await,
            (Route::Form, _) => not_allowed(ex, "POST, OPTIONS"),
            (Route::Tus, _) => crate::upload::resumable::tus::handle(ex, &self.app).await,
            (Route::Resumable, _) => ietf::handle(ex, &self.app).await,
            (Route::File | Route::NotFound, Method::Post | Method::Put)
                if ietf::is_creation(ex.head()) =>
            {
                ietf::create(ex, &self.app).await
            }
            // An upload to a path that is no file address (`/app1`, `//x`, `/`) still goes
            // through the receive conditions, so it is answered `bad_appid` / `bad_path` as
            // the contract orders them, not 404.
            (Route::File | Route::NotFound, Method::Post | Method::Put) => {
                crate::upload::handle_upload(ex, &self.app).await
            }
            (Route::File, Method::Get | Method::Head) => {
                crate::download::handle_registered(ex, &self.app).await
            }
            (Route::File, Method::Delete) => crate::manage::files::delete(ex, &self.app).await,
            (Route::File, _) => not_allowed(ex, "GET, HEAD, POST, PUT, DELETE, OPTIONS"),
            (Route::NotFound, _) => respond(ex.access(), &RouteError::NotFound),
        }
    }
}

/// The `route` label of the request metrics and the access log.
fn metric_route(r: &Route, method: Method) -> Metric {
    match (r, method) {
        (Route::Health, _) => Metric::Healthz,
        (Route::Ready, _) => Metric::Readyz,
        (Route::Metrics, _) => Metric::Metrics,
        (Route::Register, _) => Metric::Register,
        (Route::Outbox, _) => Metric::Manage,
        (Route::Files, _) | (Route::File, Method::Delete) => Metric::Files,
        (Route::Form, Method::Post) => Metric::Upload,
        (Route::Form, _) => Metric::Other,
        (Route::Tus, Method::Post | Method::Patch) => Metric::Upload,
        (Route::Tus, _) => Metric::Other,
        (Route::Resumable, Method::Patch) => Metric::Upload,
        (Route::Resumable, _) => Metric::Other,
        (Route::File | Route::NotFound, Method::Post | Method::Put) => Metric::Upload,
        (Route::File, Method::Get | Method::Head) => Metric::Download,
        (Route::File | Route::NotFound, _) => Metric::Other,
    }
}

fn not_allowed(ex: &mut Exchange<'_>, allow: &'static str) -> Response {
    let e = RouteError::MethodNotAllowed {
        allow,
        hint: "method not allowed here",
    };
    respond(ex.access(), &e)
}
