//! What requests mean. The driver calls a [`Handler`] with each request head; the node's own
//! handler is [`Router`].

use std::future::Future;
use std::sync::Arc;

use crate::app::App;
use crate::health;
use crate::http::{Expectation, Method, Response};
use crate::metrics::Route as Metric;

use super::exchange::Exchange;

/// Answers requests. One handler lives on each io_uring thread (it need not be `Send`); it may
/// await anything before deciding whether to read the body.
pub trait Handler: 'static {
    fn handle(&self, ex: &mut Exchange<'_>) -> impl Future<Output = Response>;
}

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
            return Response::error(
                417,
                "expectation_failed",
                "only Expect: 100-continue is supported",
            );
        }
        match (r, method) {
            (Route::Health, Method::Get | Method::Head) => health::healthz(),
            (Route::Ready, Method::Get | Method::Head) => health::readyz(ex, &self.app).await,
            (Route::Metrics, Method::Get | Method::Head) => health::metrics(&self.app),
            (Route::Health | Route::Ready | Route::Metrics, _) => not_allowed("GET, HEAD"),
            (Route::Register, _) => crate::register::handler::handle(ex, &self.app.registry).await,
            // An upload to a path that is no file address (`/app1`, `//x`, `/`) still goes
            // through the receive conditions, so it is answered `bad_appid` / `bad_path` as
            // the contract orders them, not 404.
            (Route::File | Route::NotFound, Method::Post | Method::Put) => {
                crate::upload::handle_upload(ex, &self.app).await
            }
            (Route::File, Method::Get | Method::Head) => {
                crate::download::handle(ex, &self.app.store).await
            }
            (Route::File, _) => not_allowed("GET, HEAD, POST, PUT"),
            (Route::NotFound, _) => Response::error(404, "not_found", "no such route"),
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

fn not_allowed(allow: &'static str) -> Response {
    Response::error(405, "method_not_allowed", "method not allowed here").header("Allow", allow)
}
