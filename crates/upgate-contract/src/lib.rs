//! upgate's callback contract, as both sides of it see it: the JSON the node POSTs to an
//! application and the answer it reads back ([`wire`]), and the Standard Webhooks signature
//! every callback carries ([`sign`]).
//!
//! The node (`upgate`, which re-exports both under `upgate::callback`) and the tools
//! (`upgate-tools`: the demo application server verifies and parses what the node sends) share
//! this crate, so the two ends of a callback cannot drift apart. It does no I/O: serde types,
//! HMAC and a random secret, nothing else.
//!
//! ## Layout
//!
//! | file | holds |
//! |---|---|
//! | `wire.rs` | [`FirstInfo`], [`SecondInfo`], [`SuccessTrue`], [`AppAnswer`], [`AppReply`] |
//! | `sign.rs` | secrets ([`new_secret`](sign::new_secret)), [`sign`](sign::sign), [`signature_header`](sign::signature_header), [`verify`](sign::verify) |

pub mod sign;
pub mod wire;

pub use wire::{AppAnswer, AppReply, FirstInfo, RequestInfo, SecondInfo, SuccessTrue};
