//! What requests mean: the node's [`Handler`], [`Router`], picks a route from the path and
//! method and hands the exchange to that route's handler. The driver below knows only the
//! `Handler` trait; this file is where the handlers meet it.
//!
//! | path | GET / HEAD | POST / PUT | other |
//! |---|---|---|---|
//! | `/healthz`, `/readyz`, `/metrics` | [`crate::health`] | 405 | 405 |
//! | `/upload/register[/{appid}]` | [`crate::register::handler`] | the same | the same (405 inside) |
//! | `/{appid}/{path}` | [`crate::download`] | [`crate::upload::flow`] | 405 |
//! | anything else | 404 | the upload flow (400 `bad_appid` / `bad_path`) | 404 |

use std::sync::Arc;

use crate::app::App;
use crate::error::{respond, RouteError};
use crate::health;
use crate::http::{Expectation, Method, Response};
use crate::metrics::Route as Metric;

use crate::server::{Exchange, Handler};

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
    File,
    NotFound,
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
        match (r, method) {
            (Route::Health, Method::Get | Method::Head) => health::healthz(),
            (Route::Ready, Method::Get | Method::Head) => health::readyz(ex, &self.app).await,
            (Route::Metrics, Method::Get | Method::Head) => health::metrics(&self.app),
            (Route::Health | Route::Ready | Route::Metrics, _) => not_allowed(ex, "GET, HEAD"),
            (Route::Register, _) => crate::register::handler::handle(ex, &self.app.registry).await,
            // An upload to a path that is no file address (`/app1`, `//x`, `/`) still goes
            // through the receive conditions, so it is answered `bad_appid` / `bad_path` as
            // the contract orders them, not 404.
            (Route::File | Route::NotFound, Method::Post | Method::Put) => {
                crate::upload::handle_upload(ex, &self.app).await
            }
            (Route::File, Method::Get | Method::Head) => {
                // No app lets a script-capable type inline until `AppRecord` has `inline_types`.
                let safe = crate::download::SafeServing::STRICT;
                crate::download::handle(ex, &self.app.store, &safe).await
            }
            (Route::File, _) => not_allowed(ex, "GET, HEAD, POST, PUT"),
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
