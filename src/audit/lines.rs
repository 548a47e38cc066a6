//! Reading an audit file line by line, bounded: `audit verify` and `audit show` read files
//! an attacker may have written to, so no line is buffered beyond [`MAX_LINE_BYTES`] plus
//! its newline, however long it really is (a file without any newline included).

use std::io::{self, BufRead, Read};

/// Longest line (without its newline) read as a record. The daemon's longest line is a
/// message event listing every recipient: Postfix's default `smtpd_recipient_limit` of
/// 1000 recipients of at most 256 octets (RFC 5321 4.5.3.1.3) is about 256 KiB even
/// escaped, so 16 MiB leaves room for raised limits while a file without newlines (not
/// an audit log, or damaged) cannot make a reader hold it all in memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// One line as read.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Ended by a newline (not included).
    Complete(&'a [u8]),
    /// The file's last bytes, without a newline (a crash mid-write, or a cut copy).
    Unterminated(&'a [u8]),
    /// Longer than [`MAX_LINE_BYTES`]; the rest of it was not read.
    TooLong,
}

/// The lines of one reader, numbered from 1.
pub struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    line_no: u64,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            // Room for the longest line from the start: growing by doubling instead leaves
            // the smaller copies with the allocator, about 4× the line in resident memory.
            // Pages never written (the usual short lines) are not resident.
            buf: Vec::with_capacity(MAX_LINE_BYTES + 1),
            line_no: 0,
        }
    }

    /// The next line and its number; `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        self.buf.clear();
        // At most one byte past the longest line plus its newline is ever buffered.
        let limit = MAX_LINE_BYTES as u64 + 1;
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)?;
        if read == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        let line = match self.buf.strip_suffix(b"\n") {
            Some(line) => Line::Complete(line),
            None if read as u64 == limit => Line::TooLong,
            None => Line::Unterminated(&self.buf),
        };
        Ok(Some((self.line_no, line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_unterminated_and_too_long() {
        let mut input = b"one\n\ntwo".to_vec();
        let mut lines = Lines::new(&input[..]);
        assert_eq!(
            lines.next_line().unwrap(),
            Some((1, Line::Complete(b"one")))
        );
        assert_eq!(lines.next_line().unwrap(), Some((2, Line::Complete(b""))));
        assert_eq!(
            lines.next_line().unwrap(),
            Some((3, Line::Unterminated(b"two")))
        );
        assert_eq!(lines.next_line().unwrap(), None);

        // exactly the limit plus its newline is a line; one byte more is not
        input = vec![b'x'; MAX_LINE_BYTES];
        input.push(b'\n');
        let mut lines = Lines::new(&input[..]);
        assert!(
            matches!(lines.next_line().unwrap(), Some((1, Line::Complete(l))) if l.len() == MAX_LINE_BYTES)
        );
        input = vec![b'x'; MAX_LINE_BYTES + 1];
        let mut lines = Lines::new(&input[..]);
        assert_eq!(lines.next_line().unwrap(), Some((1, Line::TooLong)));
    }
}
