//! upgate's other parties, kept out of the node's library: the reference uploading client, the
//! reference application server, the load generator, and the one small app server that the
//! demo app, the load generator's callback app and the node's end-to-end tests all run on. The
//! `upgate` binary carries their subcommands ([`cli`]).
//!
//! The crate depends on the protocol crate (`upgate-http`) and the callback contract
//! (`upgate-contract`), never on the node (`upgate`): the tools talk to a node over HTTP only.
//!
//! ## Layout
//!
//! | module | is |
//! |---|---|
//! | [`appserver`] | one small blocking HTTP/1.1 application server (keep-alive, cached thread pool, a handler closure) |
//! | [`client`] | the reference uploading client (patent claims 12-14): `upgate upload`, `upgate register` |
//! | [`demo`] | the reference application server (patent claims 9-11): `upgate demo-app` |
//! | [`loadgen`] | the load generator behind `upgate bench`, and its fast callback app |
//! | [`cli`] | the subcommands `upload`, `register`, `demo-app`, `bench`, `sign-upload` |

pub mod appserver;
pub mod cli;
pub mod client;
pub mod demo;
pub mod loadgen;
