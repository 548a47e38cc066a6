//! The DATA phase of LMTP (RFC 2033 §4.2, RFC 5321 §4.5.2): lines up to `CRLF.CRLF`,
//! dot-unstuffed, handed out in pieces of at most [`MAX_PIECE`] bytes so that no line length
//! makes memory grow. A piece is a whole line (with its line end) or, for longer lines, a
//! part of one.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Longest piece handed out; longer lines come in several pieces.
pub const MAX_PIECE: usize = 64 * 1024;

pub enum Piece {
    /// Unstuffed message bytes in the buffer passed to [`DotReader::next`].
    Data,
    /// The terminating `.` line was read.
    End,
}

/// Reads one message's DATA from `reader`.
pub struct DotReader<'a, R> {
    reader: &'a mut R,
    at_line_start: bool,
    idle: Duration,
    finished: bool,
}

impl<'a, R: AsyncBufRead + Unpin> DotReader<'a, R> {
    pub fn new(reader: &'a mut R, idle: Duration) -> Self {
        Self {
            reader,
            at_line_start: true,
            idle,
            finished: false,
        }
    }

    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The next piece into `buf` (cleared first). End of stream or the idle timeout before
    /// the terminating line is an error: the client is gone and nothing may be stored.
    pub async fn next(&mut self, buf: &mut Vec<u8>) -> io::Result<Piece> {
        buf.clear();
        if self.finished {
            return Ok(Piece::End);
        }
        loop {
            let available = tokio::time::timeout(self.idle, self.reader.fill_buf())
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle timeout in DATA"))??;
            if available.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in DATA",
                ));
            }
            let room = MAX_PIECE - buf.len();
            let (take, complete) = match available.iter().take(room).position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len().min(room), available.len() >= room),
            };
            buf.extend_from_slice(&available[..take]);
            self.reader.consume(take);
            if complete || buf.len() >= MAX_PIECE {
                break;
            }
        }
        let line_start = self.at_line_start;
        self.at_line_start = buf.ends_with(b"\n");
        if line_start && (buf.as_slice() == b".\r\n" || buf.as_slice() == b".\n") {
            self.finished = true;
            buf.clear();
            return Ok(Piece::End);
        }
        if line_start && buf.first() == Some(&b'.') {
            buf.remove(0);
        }
        Ok(Piece::Data)
    }

    /// Reads and discards the rest of the DATA (after a refusal), so that the replies
    /// and the next command stay in step.
    pub async fn drain(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        // Bounded by the idle timeout per read and by the client's message.
        while let Piece::Data = self.next(&mut buf).await? {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8]) -> io::Result<Vec<u8>> {
        let mut r = tokio::io::BufReader::new(input);
        let mut d = DotReader::new(&mut r, Duration::from_secs(5));
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Piece::Data = d.next(&mut buf).await? {
            assert!(buf.len() <= MAX_PIECE);
            out.extend_from_slice(&buf);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn unstuffs_and_stops_at_the_dot_line() {
        assert_eq!(all(b"a\r\n..b\r\n.\r\nNEXT").await.unwrap(), b"a\r\n.b\r\n");
        assert_eq!(all(b".\r\n").await.unwrap(), b"");
        // A dot inside a line is data.
        assert_eq!(all(b"a.\r\n.x.\r\n.\r\n").await.unwrap(), b"a.\r\nx.\r\n");
        assert!(all(b"a\r\nno end").await.is_err());
    }

    #[tokio::test]
    async fn long_lines_come_in_pieces_and_keep_line_state() {
        let mut msg = vec![b'x'; MAX_PIECE * 2 + 10];
        // A '.' right after a piece boundary is not at a line start.
        msg[MAX_PIECE] = b'.';
        msg.extend_from_slice(b"\r\n..y\r\n.\r\n");
        let out = all(&msg).await.unwrap();
        let mut want = vec![b'x'; MAX_PIECE * 2 + 10];
        want[MAX_PIECE] = b'.';
        want.extend_from_slice(b"\r\n.y\r\n");
        assert_eq!(out, want);
    }

    #[tokio::test]
    async fn drain_leaves_the_next_command() {
        let input: &[u8] = b"x\r\n.\r\nQUIT\r\n";
        let mut r = tokio::io::BufReader::new(input);
        DotReader::new(&mut r, Duration::from_secs(1))
            .drain()
            .await
            .unwrap();
        let mut rest = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut r, &mut rest)
            .await
            .unwrap();
        assert_eq!(rest, "QUIT\r\n");
    }
}
