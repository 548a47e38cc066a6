//! The socketmap netstring codec (`map::netstring`): the input is a request stream fed in
//! reads of a size the first byte picks; every payload decoded must re-encode to the
//! exact bytes it came from, and the input itself must round-trip as a payload.

use bytes::BytesMut;
use nta7516_milter::map::netstring::{MAX_QUERY_SIZE, decode, encode};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&first, stream)) = data.split_first() else {
            return;
        };
        let chunk = usize::from(first % 64) + 1;
        let mut buf = BytesMut::new();
        let mut consumed = 0;
        'feed: for c in stream.chunks(chunk) {
            buf.extend_from_slice(c);
            loop {
                match decode(&mut buf, MAX_QUERY_SIZE) {
                    Ok(Some(p)) => {
                        assert!(p.len() <= MAX_QUERY_SIZE);
                        let enc = encode(&p);
                        assert_eq!(&stream[consumed..consumed + enc.len()], &enc[..]);
                        consumed += enc.len();
                    }
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
        }
        if stream.len() <= MAX_QUERY_SIZE {
            let mut one = BytesMut::from(&encode(stream)[..]);
            assert_eq!(decode(&mut one, MAX_QUERY_SIZE), Ok(Some(stream.to_vec())));
            assert!(one.is_empty());
        }
    });
}
