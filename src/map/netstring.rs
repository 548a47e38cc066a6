//! Netstrings (`<length>:<bytes>,`) as Postfix's socketmap protocol uses them.
//!
//! The decoder is incremental: it is fed whatever a read returned (one byte or many
//! requests at once) and yields complete payloads. Malformed or oversized input is an
//! error after which the connection must be closed: there is no way to resynchronise a
//! netstring stream.

use bytes::{Buf, BytesMut};

/// Largest request payload accepted. Postfix's `socketmap_max_query_size` default
/// (socketmap_table(5), Postfix 3.12; earlier versions use the same fixed limit).
pub const MAX_QUERY_SIZE: usize = 10_000;
/// Largest reply payload Postfix accepts (`socketmap_max_reply_size`, Postfix 3.10+).
pub const MAX_REPLY_SIZE: usize = 100_000;
/// Digits in the length prefix of a request: enough for MAX_QUERY_SIZE, so an endless
/// digit string is refused early instead of being buffered.
const MAX_LENGTH_DIGITS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetstringError {
    #[error("netstring length prefix is not a decimal number")]
    BadLength,
    #[error("netstring length {0} exceeds the limit of {MAX_QUERY_SIZE} bytes")]
    TooLong(usize),
    #[error("netstring is not terminated by ','")]
    MissingComma,
    #[error("connection closed in the middle of a netstring")]
    Truncated,
}

/// Takes one complete netstring payload off the front of `buf`, if there is one.
pub fn decode(buf: &mut BytesMut, max: usize) -> Result<Option<Vec<u8>>, NetstringError> {
    let Some(colon) = buf
        .iter()
        .take(MAX_LENGTH_DIGITS + 1)
        .position(|&b| b == b':')
    else {
        if buf.len() > MAX_LENGTH_DIGITS || !buf.iter().all(u8::is_ascii_digit) {
            return Err(NetstringError::BadLength);
        }
        return Ok(None);
    };
    let digits = &buf[..colon];
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return Err(NetstringError::BadLength);
    }
    // At most MAX_LENGTH_DIGITS ASCII digits: parses without overflow.
    let len: usize = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(NetstringError::BadLength)?;
    if len > max {
        return Err(NetstringError::TooLong(len));
    }
    let total = colon + 1 + len + 1;
    if buf.len() < total {
        return Ok(None);
    }
    if buf[total - 1] != b',' {
        return Err(NetstringError::MissingComma);
    }
    let payload = buf[colon + 1..colon + 1 + len].to_vec();
    buf.advance(total);
    Ok(Some(payload))
}

/// Encodes one netstring.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(payload);
    out.push(b',');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(input: &[u8], chunk: usize) -> Result<Vec<Vec<u8>>, NetstringError> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            buf.extend_from_slice(c);
            while let Some(p) = decode(&mut buf, MAX_QUERY_SIZE)? {
                out.push(p);
            }
        }
        if !buf.is_empty() {
            return Err(NetstringError::Truncated);
        }
        Ok(out)
    }

    #[test]
    fn limits_match_postfix() {
        assert_eq!(MAX_QUERY_SIZE, 10_000);
        assert_eq!(MAX_REPLY_SIZE, 100_000);
        assert_eq!(MAX_QUERY_SIZE.to_string().len(), MAX_LENGTH_DIGITS);
    }

    #[test]
    fn round_trip_at_every_read_size() {
        let mut stream = Vec::new();
        for p in ["route a@b.nl", "tls b.nl", "", "route x"] {
            stream.extend(encode(p.as_bytes()));
        }
        for chunk in [4096, 128, 16, 1] {
            let got = feed(&stream, chunk).unwrap();
            assert_eq!(got.len(), 4, "chunk {chunk}");
            assert_eq!(got[0], b"route a@b.nl");
            assert_eq!(got[2], b"");
        }
    }

    #[test]
    fn exactly_at_the_limit() {
        let p = vec![b'a'; MAX_QUERY_SIZE];
        assert_eq!(feed(&encode(&p), 4096).unwrap()[0].len(), MAX_QUERY_SIZE);
        let p = vec![b'a'; MAX_QUERY_SIZE + 1];
        assert_eq!(
            feed(&encode(&p), 4096),
            Err(NetstringError::TooLong(MAX_QUERY_SIZE + 1))
        );
    }

    #[test]
    fn malformed() {
        for (input, err) in [
            (&b"x:abc,"[..], NetstringError::BadLength),
            (b":abc,", NetstringError::BadLength),
            (b"03:abc,", NetstringError::BadLength),
            (b"3:abcd", NetstringError::MissingComma),
            (b"-1:a,", NetstringError::BadLength),
            (b"123456789:", NetstringError::BadLength),
            (b"999999", NetstringError::BadLength),
            (b"99999:", NetstringError::TooLong(99_999)),
        ] {
            assert_eq!(feed(input, 1), Err(err.clone()), "{input:?}");
            assert_eq!(feed(input, 4096), Err(err), "{input:?}");
        }
        assert_eq!(feed(b"5:abc", 4096), Err(NetstringError::Truncated));
    }
}
