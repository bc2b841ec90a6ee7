//! The upload phases: each a documented function that the raw upload flow
//! ([`super::flow`]) composes, and that the form, tus and resumable handlers will compose the
//! same way. Each returns a [`FlowError`](super::FlowError) on failure and leaves nothing
//! behind: a phase that fails after the sink was opened aborts it.
//!
//! | phase | patent | function |
//! |---|---|---|
//! | receive conditions on the head | 202 / 304 | [`receive_conditions`] |
//! | first file info → pre-upload callback | 203 / 305 | [`pre_callback`] |
//! | the upload's sink, declared size reserved | 204 / 306 | [`open_sink`] |
//! | `100 Continue`, body → sink | 204–205 / 306–307 | [`receive_body`] (after `Exchange::accept_body`) |
//! | second file info → outbox, then the object made visible | 205 / 307 | [`commit`] |
//! | the post-upload callback's first attempt | 205 / 307 | [`post_callback`] |

mod body;
mod callbacks;
mod commit;
mod conditions;

pub(crate) use body::{
    open_sink, receive_body, receive_error, receive_form_file, reserve_bound, storage_error,
};
pub(crate) use callbacks::{post_callback, pre_callback};
pub(crate) use commit::commit;
pub(crate) use conditions::{admit, new_upload_id, not_stored_yet, receive_conditions, Admitted};
