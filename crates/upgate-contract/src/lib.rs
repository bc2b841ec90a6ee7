//! upgate's callback contract, as both sides of it see it: the JSON the node POSTs to an
//! application and the answer it reads back ([`wire`]), the Standard Webhooks signature
//! every callback carries ([`sign`]), the signed upload tokens an application hands to
//! browsers ([`token`]), and signed download URLs ([`url_sig`]).
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
//! | `size.rs` | [`parse_size`]: sizes with `K`/`M`/`G`/`T` suffixes |
//! | `token.rs` | [`UploadPolicy`], [`sign_upload`], [`verify_upload`], [`TokenError`] |
//! | `url_sig.rs` | signed download URLs: [`url_sig::sign_url`], [`url_sig::verify_path`] |

pub mod sign;
pub mod size;
pub mod token;
pub mod url_sig;
pub mod wire;

pub use size::parse_size;
pub use token::{sign_upload, verify_upload, TokenError, UploadPolicy};
pub use wire::{AppAnswer, AppReply, Event, FirstInfo, RequestInfo, SecondInfo, SuccessTrue};
