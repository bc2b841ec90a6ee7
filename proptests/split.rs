//! (a) Any split of a valid request — or of a pipelined pair — yields the same steps as feeding
//! it whole, and those steps are exactly the model's: its head, the 100-continue decision, its
//! body bytes, the end of the message and the keep-alive decision.

use proptest::prelude::*;
use upgate::http::check::drive;
use upgate::http::Limits;

use crate::model::{assert_steps, cuts, request, Req};

/// The requests of `reqs` the connection reaches: up to the first that closes.
fn reached(reqs: &[Req]) -> &[Req] {
    let n = reqs
        .iter()
        .position(|r| !r.persists())
        .map_or(reqs.len(), |i| i + 1);
    &reqs[..n]
}

proptest! {
    #![proptest_config(crate::config(192))]

    #[test]
    fn any_split_of_one_request_gives_the_whole_input_events(
        req in request(),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let wire = req.encode();
        let limits = Limits::default();
        let whole = drive(&wire, &[], &limits);
        assert_steps(&whole, std::slice::from_ref(&req));
        let split = drive(&wire, &cuts(&idx, wire.len()), &limits);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn any_split_of_a_pipelined_pair_gives_the_whole_input_events(
        a in request(),
        b in request(),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut wire = a.encode();
        wire.extend_from_slice(&b.encode());
        let reqs = [a, b];
        let limits = Limits::default();
        let whole = drive(&wire, &[], &limits);
        assert_steps(&whole, reached(&reqs));
        let split = drive(&wire, &cuts(&idx, wire.len()), &limits);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn byte_by_byte_gives_the_whole_input_events(req in request()) {
        let wire = req.encode();
        let every: Vec<usize> = (1..wire.len()).collect();
        let limits = Limits::default();
        let bytewise = drive(&wire, &every, &limits);
        assert_steps(&bytewise, std::slice::from_ref(&req));
    }
}
