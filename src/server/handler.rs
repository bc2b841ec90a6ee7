//! The one thing the driver knows about what requests mean.

use std::future::Future;

use crate::http::Response;

use super::exchange::Exchange;

/// Answers requests. One handler lives on each io_uring thread (it need not be `Send`); it may
/// await anything before deciding whether to read the body.
pub trait Handler: 'static {
    fn handle(&self, ex: &mut Exchange<'_>) -> impl Future<Output = Response>;
}
