//! The patent's upload flow: receive conditions, pre-callback, `100 Continue`, storage,
//! post-callback, completion. [`flow`] reads top to bottom like the patent's steps.

pub mod condition;
pub mod context;
pub mod digest;
pub mod flow;
pub mod form;
pub mod forwarded;
pub mod model;
mod phases;
pub mod reply;
pub mod resumable;
pub mod shape;
pub mod token;

pub use condition::Refusal;
pub use flow::handle_upload;
pub(crate) use phases::new_upload_id;
pub use reply::FlowError;
