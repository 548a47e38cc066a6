//! The message as Postfix writes it out after a milter's end-of-message actions, with the
//! milter option LEADING_SPACE negotiated (values written verbatim after `Name:`), so that
//! a test can hand exactly those bytes to an independent DKIM verifier.

use indymilter_test::{EomAction, EomActions};

/// `headers` as the MTA sent them to the milter (name, value after the colon) and `body`,
/// changed by `actions` in order; CRLF line ends (LF folding turned into CRLF).
pub fn emitted(headers: &[(&[u8], &[u8])], body: &[u8], actions: &EomActions) -> Vec<u8> {
    let mut h: Vec<(Vec<u8>, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect();
    let mut new_body: Option<Vec<u8>> = None;
    // The position of the `index`-th (1-based) header called `name`.
    let nth = |h: &[(Vec<u8>, Vec<u8>)], name: &[u8], index: i32| {
        h.iter()
            .enumerate()
            .filter(|(_, (n, _))| n.eq_ignore_ascii_case(name))
            .nth(usize::try_from(index).ok()?.checked_sub(1)?)
            .map(|(i, _)| i)
    };
    for a in &actions.actions {
        match a {
            EomAction::AddHeader { name, value } => {
                h.push((name.as_bytes().to_vec(), value.as_bytes().to_vec()))
            }
            EomAction::InsertHeader { index, name, value } => {
                let at = usize::try_from(*index).unwrap_or(0).min(h.len());
                h.insert(at, (name.as_bytes().to_vec(), value.as_bytes().to_vec()));
            }
            EomAction::ChangeHeader { name, index, value } => {
                match nth(&h, name.as_bytes(), *index) {
                    Some(i) => h[i].1 = value.as_bytes().to_vec(),
                    // Postfix appends a changed header that does not exist.
                    None => h.push((name.as_bytes().to_vec(), value.as_bytes().to_vec())),
                }
            }
            EomAction::DeleteHeader { name, index } => {
                if let Some(i) = nth(&h, name.as_bytes(), *index) {
                    h.remove(i);
                }
            }
            EomAction::ReplaceBody { chunk } => new_body
                .get_or_insert_with(Vec::new)
                .extend_from_slice(chunk),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (name, value) in &h {
        out.extend_from_slice(name);
        out.push(b':');
        crlf(value, &mut out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    crlf(new_body.as_deref().unwrap_or(body), &mut out);
    out
}

/// Appends `text` with every bare LF written as CRLF, as Postfix sends its lines.
fn crlf(text: &[u8], out: &mut Vec<u8>) {
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' && (i == 0 || text[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
}
