//! The registration API: applications register their pre- and post-upload callbacks by appid
//! (patent steps 301-302), read their record back, and remove it.
//!
//! - [`handler`]: the HTTP endpoints under `/upload/register`;
//! - [`auth`]: who may call them (admin token, loopback, an app's own secret);
//! - [`request`]: a form or JSON body → a validated [`crate::registry::Registration`];
//! - [`form`]: the strict `application/x-www-form-urlencoded` parser (fuzzed).

pub mod auth;
pub mod form;
pub mod handler;
pub mod request;
#[cfg(test)]
mod tests;

pub use form::{parse_form, FormError};
pub use handler::RegisterError;
