//! (d) A pipelined sequence of N random valid requests, fed in random pieces, parses into
//! exactly those N messages in order — heads, 100-continue decisions, bodies, ends — with each
//! response's keep-alive decision, and stops after the first request that closes.

use proptest::prelude::*;
use upgate::http::check::{drive, Step};
use upgate::http::Limits;

use crate::model::{assert_steps, cuts, request};

proptest! {
    #![proptest_config(crate::config(160))]

    #[test]
    fn pipelined_requests_parse_into_exactly_those_messages_in_order(
        reqs in prop::collection::vec(request(), 1..7),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..16),
    ) {
        let wire: Vec<u8> = reqs.iter().flat_map(|r| r.encode()).collect();
        let steps = drive(&wire, &cuts(&idx, wire.len()), &Limits::default());
        let reached = reqs.iter().position(|r| !r.persists()).map_or(reqs.len(), |i| i + 1);
        assert_steps(&steps, &reqs[..reached]);
        let heads = steps.iter().filter(|s| matches!(s, Step::Head(_))).count();
        prop_assert_eq!(heads, reached);
    }

    #[test]
    fn persistent_pipelines_reach_every_request(
        reqs in prop::collection::vec(request(), 1..7),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..16),
    ) {
        // Force every request to keep the connection open: all N must come out.
        let reqs: Vec<_> = reqs
            .into_iter()
            .map(|mut r| {
                r.close = false;
                r.keep_alive_10 = true;
                r
            })
            .collect();
        let wire: Vec<u8> = reqs.iter().flat_map(|r| r.encode()).collect();
        let steps = drive(&wire, &cuts(&idx, wire.len()), &Limits::default());
        assert_steps(&steps, &reqs);
        let ends = steps.iter().filter(|s| **s == Step::EndOfMessage).count();
        prop_assert_eq!(ends, reqs.len());
    }
}
