//! etcd watch messages (`upgate::registry::etcd_client`), the one thing a `registry = "etcd"`
//! node reads from etcd without asking: any message etcd can write (puts and deletes of any
//! key and value bytes, any revisions) reads back as itself from etcd's encoding, whatever its
//! key bytes are; and arbitrary text never panics the reader.

use proptest::prelude::*;
use upgate::registry::etcd_client::{
    encode_watch_message, parse_watch_message, Kv, WatchEvent, WatchMessage,
};

fn event() -> impl Strategy<Value = WatchEvent> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        (bytes(), bytes(), any::<i64>()).prop_map(|(key, value, mod_revision)| WatchEvent::Put(
            Kv {
                key,
                value,
                mod_revision
            }
        )),
        (bytes(), any::<i64>()).prop_map(|(key, revision)| WatchEvent::Delete { key, revision }),
    ]
}

fn message() -> impl Strategy<Value = WatchMessage> {
    prop_oneof![
        Just(WatchMessage::Created),
        Just(WatchMessage::Compacted),
        ".{0,40}".prop_map(WatchMessage::Canceled),
        (any::<i64>(), prop::collection::vec(event(), 0..8))
            .prop_map(|(revision, events)| WatchMessage::Events { revision, events }),
    ]
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn every_message_reads_back_from_etcds_encoding(m in message()) {
        let line = encode_watch_message(&m);
        prop_assert!(!line.contains('\n'), "one message is one line");
        prop_assert_eq!(parse_watch_message(&line).unwrap(), m);
    }

    #[test]
    fn arbitrary_text_never_panics_the_reader(line in ".{0,200}") {
        let _ = parse_watch_message(&line);
        upgate::checks::check_etcd_watch(line.as_bytes());
    }
}
