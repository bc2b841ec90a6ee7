//! The zero-copy path over real sockets: whatever part of the body arrives with the head, and
//! however the rest is cut into pieces, the stored file holds exactly the bytes sent.

mod support;

use std::io::Write;
use std::sync::OnceLock;

use proptest::prelude::*;
use support::callback_app::CallbackApp;
use support::*;
use upgate::config::Config;

struct Rig {
    node: upgate::node::Node,
    app: CallbackApp,
}

fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| {
        let app = CallbackApp::accepting();
        let node = start(Config {
            callback_allow: vec![app.addr.to_string()],
            fsync: false,
            expect: upgate::config::ExpectPolicy::Optional,
            ..test_config()
        });
        Rig { node, app }
    })
}

fn upload_in_pieces(
    name: &str,
    body: &[u8],
    with_head: usize,
    pieces: &[usize],
    expect: bool,
) -> Wire {
    let rig = rig();
    let mut s = connect(rig.node.local_addr());
    let head = format!(
        "PUT /app1/splice/{name} HTTP/1.1\r\nHost: n\r\n{}appid: app1\r\ncallback_url_pre: {}\r\nContent-Length: {}\r\n\r\n",
        if expect { "Expect: 100-continue\r\n" } else { "" },
        rig.app.url("/pre"),
        body.len()
    );
    let mut buf = Vec::new();
    let with_head = if expect { 0 } else { with_head.min(body.len()) };
    let mut first = head.into_bytes();
    first.extend_from_slice(&body[..with_head]);
    s.write_all(&first).unwrap();
    if expect {
        assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 100);
    }
    let mut at = with_head;
    let mut i = 0;
    while at < body.len() {
        let n = pieces
            .get(i)
            .copied()
            .unwrap_or(65536)
            .max(1)
            .min(body.len() - at);
        s.write_all(&body[at..at + n]).unwrap();
        s.flush().unwrap();
        if i % 3 == 1 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        at += n;
        i += 1;
    }
    read_response(&mut s, &mut buf).expect("final answer")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_split_of_a_spliced_body_stores_exactly_the_sent_bytes(
        size in 0usize..400_000,
        with_head in 0usize..70_000,
        pieces in prop::collection::vec(1usize..50_000, 0..12),
        expect in any::<bool>(),
        seed in any::<u8>(),
    ) {
        let body: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let name = format!("{size}-{with_head}-{seed}-{}-{expect}.bin", pieces.len());
        let wire = upload_in_pieces(&name, &body, with_head, &pieces, expect);
        prop_assert_eq!(wire.status, 201, "{}", String::from_utf8_lossy(&wire.body));
        prop_assert_eq!(wire.json()["size"].as_u64(), Some(size as u64));
        let got = exchange(rig().node.local_addr(), format!("GET /app1/splice/{name} HTTP/1.1\r\nHost: n\r\n\r\n").as_bytes()).0;
        prop_assert_eq!(got.status, 200);
        prop_assert!(got.body == body, "stored bytes differ from the sent ones");
    }
}
