//! Unit tests of the pure parts of `callback`: signing, the SSRF policy and address table, the
//! wire types and the outcome classifiers. The pool itself is tested against real HTTP servers in
//! `tests/callback_pool.rs`.

mod addr;
mod decision;
mod policy;
mod sign;
mod wire;
