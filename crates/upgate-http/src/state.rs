//! The connection's two state enums and the only functions that change them (h11's Rule 1):
//! every path to `Body` or `Closed` can be found by reading this file.
//!
//! ```text
//! read:  Idle ──head──▶ AwaitingDecision ──accept_body──▶ Body ──end──▶ Done ──(response out,
//!          ▲                 │                             │              keep-alive)──▶ Idle
//!          │                 └─────respond (body unread)───┴──▶ Closed   (lingering close)
//!        error ─▶ Failed ──respond──▶ Closed
//! write: Idle ──head──▶ Owed ──respond──▶ Streaming ──finish_body──▶ Done ──next cycle──▶ Idle
//!                                    └──(full body)────────────────▶ Done
//! ```

use super::decode::BodyDecoder;
use super::error::{ProtocolError, WrongState};
use super::framing::{Expectation, MessageInfo};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadState {
    /// Waiting for a request head; bytes before `scanned` hold no head end.
    Idle { scanned: usize },
    /// A head was delivered and the body (if any) stays unread until the caller decides.
    AwaitingDecision(BodyDecoder),
    /// The caller accepted the body; it is being decoded.
    Body(BodyDecoder),
    /// The request was read in full; the next one waits until this response is out.
    Done,
    /// Nothing more is read from this connection.
    Closed,
    /// The peer broke the protocol; one error response may still be sent.
    Failed(ProtocolError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteState {
    /// No request is owed a response.
    Idle,
    /// A final response is owed; `continue_sent` once the interim 100 went out.
    Owed { continue_sent: bool },
    /// The head went out; the caller is writing a `Sized` or `Chunked` body.
    Streaming,
    /// The final response is complete.
    Done,
}

/// How the driver ends the exchange after writing a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseMode {
    /// Read the next request.
    KeepAlive,
    /// Close after writing; the request was read in full, so nothing is left in flight.
    Close,
    /// Close after writing, but the peer may still be sending (an unread body or a broken
    /// head): shut down the write side and discard input for a bounded time first, so the
    /// peer reads the response instead of a reset.
    Linger,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnState {
    pub read: ReadState,
    pub write: WriteState,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

impl ConnState {
    pub fn new() -> Self {
        ConnState {
            read: ReadState::Idle { scanned: 0 },
            write: WriteState::Idle,
            keep_alive: true,
            expect_continue: false,
        }
    }

    pub fn read_name(&self) -> &'static str {
        match self.read {
            ReadState::Idle { .. } => "Idle",
            ReadState::AwaitingDecision(_) => "AwaitingDecision",
            ReadState::Body(_) => "Body",
            ReadState::Done => "Done",
            ReadState::Closed => "Closed",
            ReadState::Failed(_) => "Failed",
        }
    }

    /// A complete head arrived.
    pub fn on_head(&mut self, info: &MessageInfo, decoder: BodyDecoder) {
        debug_assert!(matches!(self.read, ReadState::Idle { .. }));
        debug_assert_eq!(self.write, WriteState::Idle);
        self.read = ReadState::AwaitingDecision(decoder);
        self.write = WriteState::Owed {
            continue_sent: false,
        };
        self.keep_alive = info.keep_alive;
        self.expect_continue = info.expect == Expectation::Continue;
    }

    /// The caller decided to read the body. Returns whether the interim 100 must be sent.
    pub fn on_accept_body(&mut self) -> Result<bool, WrongState> {
        let ReadState::AwaitingDecision(decoder) = &self.read else {
            return Err(self.wrong("accept_body"));
        };
        let decoder = decoder.clone();
        let send_continue = self.expect_continue
            && !decoder.is_done()
            && self.write
                == (WriteState::Owed {
                    continue_sent: false,
                });
        if send_continue {
            self.write = WriteState::Owed {
                continue_sent: true,
            };
        }
        self.read = ReadState::Body(decoder);
        Ok(send_continue)
    }

    /// The body's last byte was decoded.
    pub fn on_end_of_message(&mut self) {
        debug_assert!(matches!(self.read, ReadState::Body(_)));
        self.read = ReadState::Done;
    }

    /// The peer broke the protocol.
    pub fn on_error(&mut self, e: ProtocolError) {
        self.keep_alive = false;
        self.read = ReadState::Failed(e);
    }

    /// The node will close after the current exchange (shutdown in progress).
    pub fn disable_keep_alive(&mut self) {
        self.keep_alive = false;
    }

    /// The peer closed its side cleanly between requests.
    pub fn on_peer_closed(&mut self) {
        self.keep_alive = false;
        self.read = ReadState::Closed;
    }

    /// A final response is being written. `streams_body` when the caller writes the body.
    pub fn on_respond(&mut self, streams_body: bool) -> Result<CloseMode, WrongState> {
        match (&self.read, self.write) {
            (_, WriteState::Owed { .. }) => {}
            // Unsolicited responses (408 on a slow head, errors before a head) always close.
            (ReadState::Idle { .. } | ReadState::Failed(_), WriteState::Idle) => {}
            _ => return Err(self.wrong("respond")),
        }
        let mode = match &self.read {
            ReadState::AwaitingDecision(d) | ReadState::Body(d) if d.is_done() => {
                // The body is empty or fully decoded: no bytes of it remain in flight.
                self.read = ReadState::Done;
                if self.keep_alive {
                    CloseMode::KeepAlive
                } else {
                    CloseMode::Close
                }
            }
            ReadState::Done if self.keep_alive => CloseMode::KeepAlive,
            ReadState::Done => CloseMode::Close,
            _ => CloseMode::Linger,
        };
        if mode == CloseMode::Linger {
            self.keep_alive = false;
            self.read = ReadState::Closed;
        }
        self.write = if streams_body {
            WriteState::Streaming
        } else {
            WriteState::Done
        };
        Ok(mode)
    }

    /// The caller finished writing a streamed body.
    pub fn on_body_written(&mut self) -> Result<(), WrongState> {
        if self.write != WriteState::Streaming {
            return Err(self.wrong("finish_body"));
        }
        self.write = WriteState::Done;
        Ok(())
    }

    /// Both sides are finished with one exchange on a kept-alive connection: start the next.
    pub fn try_next_cycle(&mut self) -> bool {
        if self.read == ReadState::Done && self.write == WriteState::Done && self.keep_alive {
            self.read = ReadState::Idle { scanned: 0 };
            self.write = WriteState::Idle;
            self.expect_continue = false;
            true
        } else {
            false
        }
    }

    fn wrong(&self, op: &'static str) -> WrongState {
        WrongState {
            op,
            state: self.read_name(),
        }
    }
}
