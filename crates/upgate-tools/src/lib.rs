//! upgate's other parties, kept out of the node's library.
//!
//! | module | is |
//! |---|---|
//! | [`appserver`] | one small blocking HTTP/1.1 application server (keep-alive, cached thread pool) |

pub mod appserver;
