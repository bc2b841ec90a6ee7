//! Unit tests of the pure parts of `callback`: the SSRF policy and address table and the
//! outcome classifiers (signing and the wire types are tested in `upgate-contract`). The pool
//! itself is tested against real HTTP servers in `tests/callback_pool.rs`.

mod addr;
mod decision;
mod policy;
