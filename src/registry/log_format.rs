//! The outbox log's records on disk, and reading them back.
//!
//! A record is framed as
//!
//! ```text
//! [len: u32 LE][crc32 of the payload: u32 LE][payload: len bytes of JSON]
//! ```
//!
//! and its payload is `{"put":<OutboxEntry>}` (the entry as it now is, whole) or
//! `{"del":"<event id>"}`. Every record carries a whole state, never a delta, so replaying a
//! record twice, or replaying records whose effect a snapshot already holds, changes nothing:
//! the last record of a key decides it. That is what lets a compaction write a snapshot while
//! newer records are still on their way (see `log_writer.rs`).
//!
//! Reading stops at the first record that is cut short or fails its checksum: a crash during an
//! append leaves at most the batch being written incomplete, and none of that batch's uploads
//! was answered.

use serde::{Deserialize, Serialize};

use super::OutboxEntry;

/// Header bytes before each payload.
pub(super) const HEADER: usize = 8;
/// The longest payload accepted when reading (an entry is a few KiB; anything longer is damage).
pub(super) const MAX_PAYLOAD: usize = 16 << 20;

/// One change to the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Record {
    /// The entry with this event id is now this.
    Put(OutboxEntry),
    /// The entry with this event id is gone.
    Del(String),
}

/// Appends `record`, framed, to `out`.
pub(super) fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    serde_json::to_writer(&mut *out, record).expect("an outbox record serialises");
    let payload = &out[start + HEADER..];
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32fast::hash(payload).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + HEADER].copy_from_slice(&crc);
}

/// What a log held: its records in order, how many bytes of it were whole, and why reading
/// stopped early (if it did).
#[derive(Debug, Default)]
pub(super) struct Replay {
    pub records: Vec<Record>,
    /// Bytes of whole, valid records from the start; the file is cut back to this.
    pub good_len: u64,
    /// Why reading stopped before the end of the bytes, for the operator's log.
    pub stopped: Option<String>,
}

/// Reads every whole record of `bytes`, stopping at the first damaged or incomplete one.
pub(super) fn decode(bytes: &[u8]) -> Replay {
    let mut replay = Replay::default();
    let mut at = 0usize;
    while at < bytes.len() {
        match decode_one(&bytes[at..]) {
            Ok((record, used)) => {
                replay.records.push(record);
                at += used;
            }
            Err(why) => {
                replay.stopped = Some(format!("{why} at byte {at} of {}", bytes.len()));
                break;
            }
        }
    }
    replay.good_len = at as u64;
    replay
}

/// One record from the front of `bytes`, and the bytes it used.
fn decode_one(bytes: &[u8]) -> Result<(Record, usize), &'static str> {
    let Some(header) = bytes.get(..HEADER) else {
        return Err("record header cut short");
    };
    let len = u32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().unwrap());
    if len > MAX_PAYLOAD {
        return Err("record length out of range");
    }
    let Some(payload) = bytes.get(HEADER..HEADER + len) else {
        return Err("record payload cut short");
    };
    if crc32fast::hash(payload) != crc {
        return Err("record checksum mismatch");
    }
    let record = serde_json::from_slice(payload).map_err(|_| "record payload unreadable")?;
    Ok((record, HEADER + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::OutboxFile;
    use crate::storage::Version;
    use proptest::prelude::*;

    fn entry(id: &str, body: Vec<u8>, placed: bool) -> OutboxEntry {
        OutboxEntry {
            event_id: id.into(),
            appid: "app1".into(),
            url: "http://127.0.0.1:9/post".into(),
            body,
            attempts: 0,
            next_attempt_at_ms: 5,
            created_at_ms: 1,
            last_error: None,
            guarded: false,
            file: Some(OutboxFile {
                rel: "a/b.bin".into(),
                size: 3,
                version: Version("42".into()),
                placed,
            }),
        }
    }

    fn record() -> impl Strategy<Value = Record> {
        prop_oneof![
            (
                "[a-z0-9]{1,40}",
                proptest::collection::vec(any::<u8>(), 0..200),
                any::<bool>()
            )
                .prop_map(|(id, body, placed)| Record::Put(entry(&id, body, placed))),
            "[a-z0-9]{1,40}".prop_map(Record::Del),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever records were written come back, in order, and the whole log is good.
        #[test]
        fn records_round_trip(records in proptest::collection::vec(record(), 0..20)) {
            let mut log = Vec::new();
            for r in &records {
                encode(r, &mut log);
            }
            let replay = decode(&log);
            prop_assert_eq!(&replay.records, &records);
            prop_assert_eq!(replay.good_len, log.len() as u64);
            prop_assert!(replay.stopped.is_none());
        }

        /// A log cut anywhere (a crash mid-append) yields exactly the records that were whole
        /// before the cut, and says where it stopped.
        #[test]
        fn a_cut_log_yields_the_whole_records_before_the_cut(
            records in proptest::collection::vec(record(), 1..10),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut log = Vec::new();
            let mut ends = Vec::new();
            for r in &records {
                encode(r, &mut log);
                ends.push(log.len());
            }
            let cut = cut.index(log.len());
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            let replay = decode(&log[..cut]);
            prop_assert_eq!(&replay.records[..], &records[..whole]);
            prop_assert_eq!(replay.good_len, if whole == 0 { 0 } else { ends[whole - 1] as u64 });
            prop_assert_eq!(replay.stopped.is_some(), cut != replay.good_len as usize);
        }

        /// A flipped byte inside a record is caught by its checksum or framing: nothing after
        /// the damage is read, and nothing damaged is returned as a record.
        #[test]
        fn a_damaged_record_ends_the_log(
            records in proptest::collection::vec(record(), 1..6),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut log = Vec::new();
            let mut ends = vec![0];
            for r in &records {
                encode(r, &mut log);
                ends.push(log.len());
            }
            let at = at.index(log.len());
            log[at] ^= flip;
            let damaged = ends.iter().filter(|&&e| e <= at).count() - 1;
            let replay = decode(&log);
            prop_assert_eq!(&replay.records[..], &records[..damaged]);
            prop_assert!(replay.stopped.is_some());
        }

        /// Arbitrary bytes never panic and never yield more than they hold.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let replay = decode(&bytes);
            prop_assert!(replay.good_len as usize <= bytes.len());
        }
    }
}
