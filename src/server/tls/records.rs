//! The TLS record layer after the handshake: records opened in place in the caller's buffer,
//! and sealed from the caller's bytes, with the keys rustls negotiated.
//!
//! rustls 0.23 copies every record's plaintext into a `Vec` of its own (`received_plaintext`,
//! with both its buffered and its unbuffered API), and the buffered API copies the TLS bytes
//! into its deframer first. Once the handshake is done, the session is handed to this layer
//! instead (`dangerous_into_kernel_connection`, the same handoff kernel TLS takes): the record
//! is decrypted where it lies, with rustls' own `MessageDecrypter` for the negotiated suite
//! (nonce, additional data and TLS 1.3 padding are rustls' code, not ours), and the plaintext is
//! used from there: the HTTP engine reads it, and body bytes go to the file from the same
//! buffer. rustls keeps what it alone can do: computing the next keys on a `KeyUpdate`
//! ([`rustls::kernel::KernelConnection`]).
//!
//! What arrives after the handshake, and what it gets:
//! - `application_data`: its plaintext, in place;
//! - `close_notify`: the end of the peer's stream (nothing after it is read);
//! - TLS 1.3 `KeyUpdate`: new receive keys; when the peer asks, ours are updated too, after
//!   telling it with a `KeyUpdate` of our own;
//! - anything else (another alert, renegotiation, a record too large or failing to decrypt):
//!   an error, with the fatal alert the RFCs name queued for the peer.

use std::ops::Range;

use rustls::crypto::cipher::{
    InboundOpaqueMessage, MessageDecrypter, MessageEncrypter, OutboundPlainMessage,
};
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::{
    AlertDescription, ConnectionTrafficSecrets, ContentType, Error, PeerMisbehaved,
    ProtocolVersion, SupportedCipherSuite,
};

/// A record's header: type, version, length.
pub const HEADER_LEN: usize = 5;
/// The most plaintext one record carries.
pub const MAX_PLAINTEXT: usize = 16 * 1024;
/// The largest record body accepted: TLS 1.2 allows 2048 bytes of expansion (RFC 5246
/// 6.2.3); TLS 1.3's 256 (RFC 8446 5.2) is checked by the decrypter.
const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 2048;
/// The largest whole record: what a buffer must be able to hold to make progress.
pub const MAX_RECORD: usize = HEADER_LEN + MAX_CIPHERTEXT;

const KEY_UPDATE: u8 = 24;
/// `KeyUpdate`s accepted in a row without application data between them.
const MAX_UPDATES_WITHOUT_DATA: u32 = 32;

/// The size of the record `bytes` begin with (header included), once its header is there.
pub fn record_size(bytes: &[u8]) -> Option<usize> {
    match bytes {
        [_, _, _, hi, lo, ..] => Some(HEADER_LEN + u16::from_be_bytes([*hi, *lo]) as usize),
        _ => None,
    }
}

/// Whether `bytes` begin with a whole record (or a header no record may have: opening it
/// fails at once, so no more bytes are needed).
pub fn whole_record(bytes: &[u8]) -> bool {
    match bytes {
        [_, _, _, hi, lo, body @ ..] => {
            let len = u16::from_be_bytes([*hi, *lo]) as usize;
            len > MAX_CIPHERTEXT || body.len() >= len
        }
        _ => false,
    }
}

/// What opening the records at the front of a buffer found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Opened {
    /// Bytes of whole records used from the buffer's front; a partial record after them is
    /// left for the next call, with more bytes after it.
    pub used: usize,
    /// The peer sent `close_notify`: its stream ended (bytes after it were not read).
    pub closed: bool,
    /// The largest record opened (header included).
    pub largest: usize,
}

/// The two directions' keys and sequence numbers of one connection after its handshake.
pub struct Records {
    suite: SupportedCipherSuite,
    tls13: bool,
    rx: Box<dyn MessageDecrypter>,
    rx_seq: u64,
    tx: Box<dyn MessageEncrypter>,
    tx_seq: u64,
    /// Computes the next keys on a key update; `None` in tests of this layer alone, where a
    /// `KeyUpdate` is refused.
    kernel: Option<KernelConnection<ServerConnectionData>>,
    /// Records for the peer produced while reading (our `KeyUpdate`), sent before anything
    /// else.
    pending: Vec<u8>,
    /// `KeyUpdate`s since the last application data: each costs a key derivation (and, when
    /// asked, a record back), so a peer may not send them without end (rustls' own bound).
    updates_without_data: u32,
}

impl Records {
    /// The layer for a finished handshake: `rx` and `tx` are the secrets and sequence numbers
    /// rustls hands over ([`rustls::ExtractedSecrets`]).
    pub fn new(
        suite: SupportedCipherSuite,
        rx: (u64, ConnectionTrafficSecrets),
        tx: (u64, ConnectionTrafficSecrets),
        kernel: Option<KernelConnection<ServerConnectionData>>,
    ) -> Result<Records, Error> {
        let tls13 = matches!(suite, SupportedCipherSuite::Tls13(_));
        Ok(Records {
            suite,
            tls13,
            rx: decrypter(suite, rx.1)?,
            rx_seq: rx.0,
            tx: encrypter(suite, tx.1)?,
            tx_seq: tx.0,
            kernel,
            pending: Vec::new(),
            updates_without_data: 0,
        })
    }

    pub fn version(&self) -> ProtocolVersion {
        match self.tls13 {
            true => ProtocolVersion::TLSv1_3,
            false => ProtocolVersion::TLSv1_2,
        }
    }

    /// Opens the whole records at the front of `buf`, each decrypted where it lies, handing
    /// `plaintext` each application-data record's plaintext and the range of `buf` it now
    /// occupies, in order. Stops at a partial record, after `close_notify`, or before a record
    /// that would take the plaintext opened past `budget` (one record is always opened).
    ///
    /// On `Err` the connection is unusable; [`Records::alert`] gives the alert to send.
    pub fn open(
        &mut self,
        buf: &mut [u8],
        budget: usize,
        mut plaintext: impl FnMut(&[u8], Range<usize>),
    ) -> Result<Opened, Error> {
        let base = buf.as_ptr() as usize;
        let mut at = 0;
        let mut opened = 0;
        let mut largest = 0;
        while buf.len() - at >= HEADER_LEN {
            let head = &buf[at..at + HEADER_LEN];
            let typ = ContentType::from(head[0]);
            let version = ProtocolVersion::from(u16::from_be_bytes([head[1], head[2]]));
            let len = u16::from_be_bytes([head[3], head[4]]) as usize;
            if len > MAX_CIPHERTEXT {
                return Err(Error::PeerSentOversizedRecord);
            }
            // Any 0x03XX, as rustls' deframer accepts (RFC 8446 5.1: the legacy version is
            // otherwise ignored; TLS 1.2 authenticates it as part of the additional data).
            if head[1] != 3 {
                return Err(Error::InvalidMessage(
                    rustls::InvalidMessage::UnknownProtocolVersion,
                ));
            }
            let outer_ok = match self.tls13 {
                true => typ == ContentType::ApplicationData,
                false => matches!(
                    typ,
                    ContentType::ApplicationData | ContentType::Alert | ContentType::Handshake
                ),
            };
            if !outer_ok {
                return Err(Error::InappropriateMessage {
                    expect_types: vec![ContentType::ApplicationData],
                    got_type: typ,
                });
            }
            if buf.len() - at - HEADER_LEN < len || (opened > 0 && opened + len > budget) {
                break;
            }
            if self.rx_seq == u64::MAX {
                return Err(Error::DecryptError);
            }
            let body = &mut buf[at + HEADER_LEN..at + HEADER_LEN + len];
            let plain = self
                .rx
                .decrypt(InboundOpaqueMessage::new(typ, version, body), self.rx_seq)?;
            self.rx_seq += 1;
            at += HEADER_LEN + len;
            largest = largest.max(HEADER_LEN + len);
            let start = plain.payload.as_ptr() as usize - base;
            let range = start..start + plain.payload.len();
            match plain.typ {
                ContentType::ApplicationData => {
                    self.updates_without_data = 0;
                    opened += range.len();
                    if !range.is_empty() {
                        plaintext(plain.payload, range);
                    }
                }
                ContentType::Alert => match plain.payload {
                    [_, 0] => {
                        return Ok(Opened {
                            used: at,
                            closed: true,
                            largest,
                        })
                    }
                    // user_canceled is a warning, followed by close_notify (RFC 8446 6.1).
                    [_, 90] => {}
                    [_, desc] => {
                        return Err(Error::AlertReceived(AlertDescription::from(*desc)));
                    }
                    _ => {
                        return Err(Error::InvalidMessage(rustls::InvalidMessage::MissingData(
                            "alert",
                        )))
                    }
                },
                ContentType::Handshake if self.tls13 => {
                    let request = key_update_request(plain.payload)?;
                    self.updates_without_data += 1;
                    if self.updates_without_data > MAX_UPDATES_WITHOUT_DATA {
                        return Err(Error::PeerMisbehaved(
                            PeerMisbehaved::TooManyKeyUpdateRequests,
                        ));
                    }
                    self.update_rx()?;
                    if request {
                        self.send_key_update()?;
                    }
                }
                // TLS 1.2 renegotiation, refused as rustls refuses it.
                ContentType::Handshake => {
                    return Err(Error::PeerMisbehaved(
                        PeerMisbehaved::TooManyRenegotiationRequests,
                    ))
                }
                other => {
                    return Err(Error::InappropriateMessage {
                        expect_types: vec![ContentType::ApplicationData],
                        got_type: other,
                    })
                }
            }
        }
        Ok(Opened {
            used: at,
            closed: false,
            largest,
        })
    }

    /// Appends to `out` the records carrying `plain` (at most [`MAX_PLAINTEXT`] each), after
    /// any record this layer owes the peer.
    pub fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        out.append(&mut self.pending);
        for chunk in plain.chunks(MAX_PLAINTEXT) {
            self.seal_one(ContentType::ApplicationData, chunk, out)?;
        }
        Ok(())
    }

    /// Records owed to the peer (a `KeyUpdate` answer), taken.
    pub fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    /// Appends an alert record: `close_notify` on a clean close, or the fatal alert that
    /// goes with `e`.
    pub fn alert(&mut self, e: Option<&Error>, out: &mut Vec<u8>) {
        let (level, desc) = match e {
            None => (1, AlertDescription::CloseNotify),
            Some(e) => (2, alert_for(e)),
        };
        out.append(&mut self.pending);
        let _ = self.seal_one(ContentType::Alert, &[level, u8::from(desc)], out);
    }

    fn seal_one(&mut self, typ: ContentType, plain: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.tx_seq >= self.confidentiality_limit() {
            if !self.tls13 || typ != ContentType::ApplicationData {
                return Err(Error::EncryptError);
            }
            // TLS 1.3: fresh keys before the limit (RFC 8446 5.5), announced first.
            self.seal_one(ContentType::Handshake, &[KEY_UPDATE, 0, 0, 1, 0], out)?;
            self.update_tx()?;
        }
        let msg = OutboundPlainMessage {
            typ,
            version: ProtocolVersion::TLSv1_2,
            payload: plain.into(),
        };
        let sealed = self.tx.encrypt(msg, self.tx_seq)?;
        self.tx_seq += 1;
        out.extend_from_slice(&sealed.encode());
        Ok(())
    }

    fn confidentiality_limit(&self) -> u64 {
        let common = match self.suite {
            SupportedCipherSuite::Tls12(s) => &s.common,
            SupportedCipherSuite::Tls13(s) => &s.common,
        };
        // rustls' own margin: refresh a little before the limit.
        common.confidentiality_limit.saturating_sub(1024)
    }

    fn update_rx(&mut self) -> Result<(), Error> {
        let kernel = self.kernel.as_mut().ok_or(Error::General(
            "key update without a kernel connection".into(),
        ))?;
        let (seq, secrets) = kernel.update_rx_secret()?;
        self.rx = decrypter(self.suite, secrets)?;
        self.rx_seq = seq;
        Ok(())
    }

    fn update_tx(&mut self) -> Result<(), Error> {
        let kernel = self.kernel.as_mut().ok_or(Error::General(
            "key update without a kernel connection".into(),
        ))?;
        let (seq, secrets) = kernel.update_tx_secret()?;
        self.tx = encrypter(self.suite, secrets)?;
        self.tx_seq = seq;
        Ok(())
    }

    /// Answers a `KeyUpdate` that asked for ours: announced with the old keys, then changed.
    fn send_key_update(&mut self) -> Result<(), Error> {
        let mut out = std::mem::take(&mut self.pending);
        self.seal_one(ContentType::Handshake, &[KEY_UPDATE, 0, 0, 1, 0], &mut out)?;
        self.pending = out;
        self.update_tx()
    }
}

/// The TLS 1.3 handshake messages a server accepts after its handshake: one `KeyUpdate`
/// (RFC 8446 4.6.3); whether the peer asks for ours.
fn key_update_request(msg: &[u8]) -> Result<bool, Error> {
    match msg {
        [KEY_UPDATE, 0, 0, 1, 0] => Ok(false),
        [KEY_UPDATE, 0, 0, 1, 1] => Ok(true),
        [KEY_UPDATE, ..] => Err(Error::InvalidMessage(
            rustls::InvalidMessage::InvalidKeyUpdate,
        )),
        _ => Err(Error::InappropriateHandshakeMessage {
            expect_types: vec![rustls::HandshakeType::KeyUpdate],
            got_type: msg.first().map_or(rustls::HandshakeType::Unknown(0), |t| {
                rustls::HandshakeType::from(*t)
            }),
        }),
    }
}

/// The fatal alert for an error (RFC 8446 6.2).
fn alert_for(e: &Error) -> AlertDescription {
    match e {
        Error::DecryptError => AlertDescription::BadRecordMac,
        Error::PeerSentOversizedRecord => AlertDescription::RecordOverflow,
        Error::InvalidMessage(_) => AlertDescription::DecodeError,
        Error::PeerMisbehaved(PeerMisbehaved::TooManyRenegotiationRequests) => {
            AlertDescription::NoRenegotiation
        }
        _ => AlertDescription::UnexpectedMessage,
    }
}

fn key_iv(
    secrets: ConnectionTrafficSecrets,
) -> Result<(rustls::crypto::cipher::AeadKey, rustls::crypto::cipher::Iv), Error> {
    match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv }
        | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
        | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => Ok((key, iv)),
        _ => Err(Error::General(
            "an AEAD this record layer does not know".into(),
        )),
    }
}

/// rustls' decrypter for the suite. A TLS 1.2 secret's IV is the fixed IV followed by the
/// explicit nonce (rustls' `extract_keys`); the key block shape says where it splits.
fn decrypter(
    suite: SupportedCipherSuite,
    secrets: ConnectionTrafficSecrets,
) -> Result<Box<dyn MessageDecrypter>, Error> {
    let (key, iv) = key_iv(secrets)?;
    Ok(match suite {
        SupportedCipherSuite::Tls13(s) => s.aead_alg.decrypter(key, iv),
        SupportedCipherSuite::Tls12(s) => {
            let fixed = s.aead_alg.key_block_shape().fixed_iv_len;
            s.aead_alg.decrypter(key, &iv.as_ref()[..fixed])
        }
    })
}

fn encrypter(
    suite: SupportedCipherSuite,
    secrets: ConnectionTrafficSecrets,
) -> Result<Box<dyn MessageEncrypter>, Error> {
    let (key, iv) = key_iv(secrets)?;
    Ok(match suite {
        SupportedCipherSuite::Tls13(s) => s.aead_alg.encrypter(key, iv),
        SupportedCipherSuite::Tls12(s) => {
            let shape = s.aead_alg.key_block_shape();
            let iv = iv.as_ref();
            let (fixed, explicit) = iv.split_at(shape.fixed_iv_len);
            s.aead_alg
                .encrypter(key, fixed, &explicit[..shape.explicit_nonce_len])
        }
    })
}
