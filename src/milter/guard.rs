//! Answers milter commands that arrive out of protocol order.
//!
//! indymilter 0.3 silently drops a command its session state cannot reach (say an
//! end-of-message right after connect) before any callback runs, so nothing answers it and
//! the MTA waits for its `milter_command_timeout` before applying its default action. A
//! broken or hostile MTA-side peer would so tie up a connection slot for minutes. This
//! stream wrapper follows the same state machine (the milter protocol's, as in Sendmail's
//! libmilter) on the bytes that pass through, and when a command that expects a reply will
//! be dropped, it writes a tempfail (`t`) reply itself: the MTA keeps the message (4xx).
//!
//! Safety argument (no second reply can ever be written): indymilter also resets its state
//! to HELO after some replies, which this guard does not see. Both sides apply the same
//! transition rule, "from the current state, else from HELO", so indymilter's state is
//! always either the guard's state or HELO; the guard only answers a command that neither
//! state can reach, which indymilter therefore drops too. Before the option negotiation is
//! complete the guard answers nothing (the skip options decide what is reachable).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::server::listen::Bound;
use crate::server::stream::{Stream, poll_write_out};

/// The reply the guard writes: length 1, `t` (SMFIR_TEMPFAIL).
pub const TEMPFAIL_REPLY: [u8; 5] = [0, 0, 0, 1, b't'];

// Protocol option bits (SMFIP_*), as negotiated in the option-negotiation reply.
const NO_CONNECT: u32 = 0x1;
const NO_HELO: u32 = 0x2;
const NO_MAIL: u32 = 0x4;
const NO_RCPT: u32 = 0x8;
const NO_BODY: u32 = 0x10;
const NO_HEADER: u32 = 0x20;
const NO_EOH: u32 = 0x40;
const NR_HEADER: u32 = 0x80;
const NO_UNKNOWN: u32 = 0x100;
const NO_DATA: u32 = 0x200;
const NR_CONNECT: u32 = 0x1000;
const NR_HELO: u32 = 0x2000;
const NR_MAIL: u32 = 0x4000;
const NR_RCPT: u32 = 0x8000;
const NR_DATA: u32 = 0x10000;
const NR_UNKNOWN: u32 = 0x20000;
const NR_EOH: u32 = 0x40000;
const NR_BODY: u32 = 0x80000;

/// Session states in protocol order (the order matters for skipping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Init,
    Opts,
    Conn,
    Helo,
    Mail,
    Rcpt,
    Data,
    Header,
    Eoh,
    Body,
    Eom,
    Quit,
    Abort,
    Unknown,
    QuitNc,
}

const ORDER: [State; 15] = [
    State::Init,
    State::Opts,
    State::Conn,
    State::Helo,
    State::Mail,
    State::Rcpt,
    State::Data,
    State::Header,
    State::Eoh,
    State::Body,
    State::Eom,
    State::Quit,
    State::Abort,
    State::Unknown,
    State::QuitNc,
];

impl State {
    /// The state a command moves to; `None` for macros (no state change) and unknown bytes
    /// (indymilter closes the connection).
    fn of_command(kind: u8) -> Option<State> {
        Some(match kind {
            b'A' => State::Abort,
            b'B' => State::Body,
            b'C' => State::Conn,
            b'E' => State::Eom,
            b'H' => State::Helo,
            b'K' => State::QuitNc,
            b'L' => State::Header,
            b'M' => State::Mail,
            b'N' => State::Eoh,
            b'O' => State::Opts,
            b'Q' => State::Quit,
            b'R' => State::Rcpt,
            b'T' => State::Data,
            b'U' => State::Unknown,
            _ => return None,
        })
    }

    fn has_transition_to(self, next: State) -> bool {
        use State::*;
        match self {
            Init => matches!(next, Opts),
            Opts | QuitNc => matches!(next, Conn | Unknown),
            Conn | Helo => matches!(next, Helo | Mail | Unknown),
            Mail => matches!(next, Rcpt | Abort | Unknown),
            Rcpt => matches!(
                next,
                Header | Eoh | Data | Body | Eom | Rcpt | Abort | Unknown
            ),
            Data | Header => matches!(next, Eoh | Header | Abort),
            Eoh | Body => matches!(next, Body | Eom | Abort),
            Eom => matches!(next, Quit | Mail | Unknown | QuitNc),
            Quit | Abort => false,
            Unknown => matches!(
                next,
                Helo | Mail | Rcpt | Data | Body | Unknown | Abort | Quit | QuitNc
            ),
        }
    }

    /// The negotiation bits of the command that enters this state: "the MTA may skip
    /// it" (`SMFIP_NO*`) and "the MTA expects no reply to it" (`SMFIP_NR*`). None for
    /// the states that have neither.
    fn option_bits(self) -> Option<(u32, u32)> {
        Some(match self {
            State::Conn => (NO_CONNECT, NR_CONNECT),
            State::Helo => (NO_HELO, NR_HELO),
            State::Mail => (NO_MAIL, NR_MAIL),
            State::Rcpt => (NO_RCPT, NR_RCPT),
            State::Data => (NO_DATA, NR_DATA),
            State::Header => (NO_HEADER, NR_HEADER),
            State::Eoh => (NO_EOH, NR_EOH),
            State::Body => (NO_BODY, NR_BODY),
            State::Unknown => (NO_UNKNOWN, NR_UNKNOWN),
            _ => return None,
        })
    }

    fn skippable(self, opts: u32) -> bool {
        self.option_bits().is_some_and(|(skip, _)| opts & skip != 0)
    }

    /// Directly, or through states the negotiation lets the MTA skip.
    fn can_reach(self, target: State, opts: u32) -> bool {
        if self.has_transition_to(target) {
            return true;
        }
        ORDER
            .iter()
            .skip_while(|s| **s != self)
            .skip(1)
            .take_while(|s| s.skippable(opts))
            .any(|s| s.has_transition_to(target))
    }

    /// Whether the MTA waits for a reply to the command that enters this state.
    fn expects_reply(self, opts: u32) -> bool {
        match self {
            State::Eom => true,
            // Option negotiation has its own reply format; abort and quit get none.
            _ => self
                .option_bits()
                .is_some_and(|(_, no_reply)| opts & no_reply == 0),
        }
    }
}

/// Splits a byte stream into milter frames (4-byte length, then the kind byte and data)
/// and hands each frame's kind, and the first bytes of its data, to the caller.
#[derive(Debug, Default)]
struct Framer {
    /// Length prefix and kind byte of the frame being read.
    head: [u8; 5],
    head_len: usize,
    /// Data bytes of the current frame still to come.
    remaining: u32,
}

impl Framer {
    /// Feeds `bytes`; calls `frame(kind)` when a frame's kind byte is complete.
    fn feed(&mut self, mut bytes: &[u8], mut frame: impl FnMut(u8, u32)) {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = (self.remaining as usize).min(bytes.len());
                self.remaining -= n as u32;
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.head_len).min(bytes.len());
            self.head[self.head_len..self.head_len + n].copy_from_slice(&bytes[..n]);
            self.head_len += n;
            bytes = &bytes[n..];
            if self.head_len == 5 {
                let len =
                    u32::from_be_bytes([self.head[0], self.head[1], self.head[2], self.head[3]]);
                self.head_len = 0;
                // A zero length has no kind byte; indymilter rejects it and closes.
                self.remaining = len.saturating_sub(1);
                frame(self.head[4], self.remaining);
            }
        }
    }
}

/// What the guard knows of the session.
#[derive(Debug)]
struct Tracker {
    state: State,
    /// The negotiated protocol options, once indymilter's negotiation reply was seen.
    opts: Option<u32>,
    commands: Framer,
    /// The first written frame (the negotiation reply): kind, version, actions, options.
    reply_head: Vec<u8>,
}

/// Bytes of the negotiation reply the guard reads: length, `O`, version, actions, options.
const NEGOTIATION_REPLY_PREFIX: usize = 4 + 1 + 12;

impl Tracker {
    fn new() -> Self {
        Tracker {
            state: State::Init,
            opts: None,
            commands: Framer::default(),
            reply_head: Vec::with_capacity(NEGOTIATION_REPLY_PREFIX),
        }
    }

    /// Commands read from the MTA; returns how many tempfail replies to write.
    fn read(&mut self, bytes: &[u8]) -> usize {
        let mut answers = 0;
        let (state, opts) = (&mut self.state, self.opts);
        self.commands.feed(bytes, |kind, _| {
            let Some(next) = State::of_command(kind) else {
                return;
            };
            let skip = opts.unwrap_or(0);
            if state.can_reach(next, skip) {
                *state = next;
                return;
            }
            *state = State::Helo;
            if State::Helo.can_reach(next, skip) {
                *state = next;
                return;
            }
            // indymilter drops it (or ends the session for a quit).
            if let Some(opts) = opts
                && next.expects_reply(opts)
            {
                answers += 1;
            }
        });
        answers
    }

    /// Bytes indymilter wrote; only the negotiation reply is of interest.
    fn wrote(&mut self, bytes: &[u8]) {
        if self.opts.is_some() || self.reply_head.len() >= NEGOTIATION_REPLY_PREFIX {
            return;
        }
        let n = (NEGOTIATION_REPLY_PREFIX - self.reply_head.len()).min(bytes.len());
        self.reply_head.extend_from_slice(&bytes[..n]);
        if self.reply_head.len() == NEGOTIATION_REPLY_PREFIX && self.reply_head[4] == b'O' {
            let o = &self.reply_head[13..17];
            self.opts = Some(u32::from_be_bytes([o[0], o[1], o[2], o[3]]));
        }
    }
}

/// The milter listener, handing indymilter guarded connections.
pub struct Listener(pub Bound);

impl indymilter::Listener for Listener {
    type Io = Guarded<Stream>;
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>> {
        self.0.poll_accept(cx).map_ok(Guarded::new)
    }
}

/// A milter connection with the guard in front of indymilter.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    tracker: Tracker,
    /// Tempfail replies still to be written.
    owed: Vec<u8>,
    /// How much of `owed` is written but not yet flushed.
    owed_written: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Guarded<S> {
    pub fn new(inner: S) -> Self {
        Guarded {
            inner,
            tracker: Tracker::new(),
            owed: Vec::new(),
            owed_written: 0,
        }
    }

    /// Writes and flushes the owed replies before anything else goes out.
    fn poll_pay(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(poll_write_out(
            &mut self.inner,
            cx,
            &self.owed,
            &mut self.owed_written
        ))?;
        if self.owed.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        self.owed.clear();
        self.owed_written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pay(cx))?;
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let answers = this.tracker.read(&buf.filled()[before..]);
            if answers > 0 {
                tracing::warn!(
                    answers,
                    "milter command out of protocol order: answered with tempfail"
                );
                for _ in 0..answers {
                    this.owed.extend_from_slice(&TEMPFAIL_REPLY);
                }
                // Paid on the next read or write, which indymilter does right after
                // dropping the command; waking makes sure a parked reader gets there.
                cx.waker().wake_by_ref();
            }
        }
        r
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pay(cx))?;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.tracker.wrote(&buf[..n]);
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pay(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pay(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut f = ((data.len() + 1) as u32).to_be_bytes().to_vec();
        f.push(kind);
        f.extend_from_slice(data);
        f
    }

    fn negotiated(opts: u32) -> Tracker {
        let mut t = Tracker::new();
        assert_eq!(t.read(&frame(b'O', &[0; 12])), 0);
        let mut reply = frame(b'O', &[0, 0, 0, 6, 0, 0, 0, 0x13]);
        reply.extend_from_slice(&opts.to_be_bytes());
        // Written in odd pieces, as a coalescing writer may.
        for piece in reply.chunks(3) {
            t.wrote(piece);
        }
        assert_eq!(t.opts, Some(opts));
        t
    }

    /// Our negotiation: no data/eoh/unknown callbacks, no reply to the stages that never refuse.
    const OURS: u32 = NO_DATA
        | NO_EOH
        | NO_UNKNOWN
        | NR_CONNECT
        | NR_HELO
        | NR_MAIL
        | NR_RCPT
        | NR_HEADER
        | NR_BODY;

    #[test]
    fn end_of_message_right_after_connect_is_answered() {
        let mut t = negotiated(OURS);
        assert_eq!(t.read(&frame(b'C', b"client\0")), 0);
        assert_eq!(t.read(&frame(b'E', b"")), 1);
        // Then a proper transaction works without answers from the guard.
        assert_eq!(t.read(&frame(b'M', b"<a@b>\0")), 0);
        assert_eq!(t.read(&frame(b'R', b"<c@d>\0")), 0);
        assert_eq!(t.read(&frame(b'L', b"Subject\0x\0")), 0);
        assert_eq!(t.read(&frame(b'B', b"body")), 0);
        assert_eq!(t.read(&frame(b'E', b"")), 0);
    }

    #[test]
    fn a_normal_session_in_one_read_needs_no_answer() {
        let mut t = negotiated(OURS);
        let mut all = Vec::new();
        for (k, d) in [
            (b'D', &b"Cj\0x\0"[..]),
            (b'C', b"client\0"),
            (b'H', b"helo\0"),
            (b'M', b"<a@b>\0"),
            (b'R', b"<c@d>\0"),
            (b'R', b"<e@f>\0"),
            (b'L', b"A\0b\0"),
            (b'N', b""),
            (b'B', b"x"),
            (b'E', b""),
            (b'M', b"<a@b>\0"),
            (b'A', b""),
            (b'Q', b""),
        ] {
            all.extend(frame(k, d));
        }
        // Byte by byte and at once give the same result.
        assert_eq!(t.read(&all), 0);
        let mut t = negotiated(OURS);
        assert_eq!(all.iter().map(|b| t.read(&[*b])).sum::<usize>(), 0);
    }

    #[test]
    fn commands_without_a_reply_are_never_answered() {
        let mut t = negotiated(OURS);
        t.read(&frame(b'C', b"client\0"));
        // A header before MAIL: dropped by indymilter, but the MTA waits for no reply.
        assert_eq!(t.read(&frame(b'L', b"A\0b\0")), 0);
        // Abort and a body chunk outside a transaction: no reply either (body is no-reply).
        assert_eq!(t.read(&frame(b'A', b"")), 0);
        assert_eq!(t.read(&frame(b'B', b"x")), 0);
    }

    #[test]
    fn a_stage_that_expects_replies_is_answered_when_out_of_order() {
        let mut t = negotiated(NO_DATA | NO_EOH | NO_UNKNOWN);
        t.read(&frame(b'C', b"client\0"));
        assert_eq!(t.read(&frame(b'L', b"A\0b\0")), 1);
        assert_eq!(t.read(&frame(b'B', b"x")), 1);
        assert_eq!(t.read(&[frame(b'E', b""), frame(b'E', b"")].concat()), 2);
    }

    #[test]
    fn nothing_is_answered_before_the_negotiation_reply() {
        let mut t = Tracker::new();
        assert_eq!(t.read(&frame(b'E', b"")), 0);
        assert_eq!(t.read(&frame(b'C', b"x\0")), 0);
    }

    #[test]
    fn state_follows_skippable_stages() {
        // With HELO skippable, MAIL after connect is fine; EOM after MAIL is not.
        let mut t = negotiated(OURS | NO_HELO);
        t.read(&frame(b'C', b"client\0"));
        assert_eq!(t.read(&frame(b'M', b"<a@b>\0")), 0);
        assert_eq!(t.read(&frame(b'E', b"")), 1);
    }

    #[test]
    fn frame_data_split_over_reads_is_skipped() {
        let mut f = Framer::default();
        let mut kinds = Vec::new();
        let mut bytes = frame(b'B', &[b'E'; 100_000]);
        bytes.extend(frame(b'E', b""));
        for piece in bytes.chunks(4093) {
            f.feed(piece, |k, _| kinds.push(k));
        }
        assert_eq!(kinds, vec![b'B', b'E']);
    }
}
