//! What requests mean. The driver calls a [`Handler`] with each request head; the node's own
//! handler is [`Router`].

use std::future::Future;

use crate::http::{Expectation, Method, Response};

use super::exchange::Exchange;

/// Answers requests. One handler lives on each io_uring thread (it need not be `Send`); it may
/// await anything before deciding whether to read the body.
pub trait Handler: 'static {
    fn handle(&self, ex: &mut Exchange<'_>) -> impl Future<Output = Response>;
}

/// The node's routes.
#[derive(Debug, Default)]
pub struct Router;

impl Router {
    pub fn new() -> Self {
        Router
    }
}

impl Handler for Router {
    async fn handle(&self, ex: &mut Exchange<'_>) -> Response {
        let head = ex.head();
        if head.info().expect == Expectation::Unsupported {
            return Response::error(417, "expectation_failed", "only Expect: 100-continue is supported");
        }
        match (head.method(), head.path_only()) {
            (Method::Get | Method::Head, b"/healthz") => Response::json(200, &br#"{"status":"ok"}"#[..]),
            (_, b"/healthz") => {
                Response::error(405, "method_not_allowed", "use GET or HEAD").header("Allow", "GET, HEAD")
            }
            _ => Response::error(404, "not_found", "no such route"),
        }
    }
}
