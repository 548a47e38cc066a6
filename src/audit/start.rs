//! Where an opened log continues the chain from, and repair of a torn last line.
//!
//! Order of authority: the log's own last line; for an empty log (new, or just rotated)
//! the `<file>.chain` state record or the last line of `<file>.1`, whichever is further
//! along; otherwise the genesis. A last line without its newline (the process or the
//! machine died inside a `write`) is cut off and quoted in an `audit_log_recovered`
//! line, so that the file verifies again and nothing is silently dropped.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::chain::{ChainState, Link, sha256_hex};

/// How much of a torn line is quoted in the recovery line.
const TORN_QUOTE_MAX: usize = 64 * 1024;
const CHUNK: u64 = 64 * 1024;

/// Something the writer puts in the file before its next line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Recovery {
    pub reasons: Vec<String>,
    pub torn_tail: Option<String>,
}

pub(super) struct Start {
    /// The last line in the chain (genesis: seq 0).
    pub last: ChainState,
    /// File length after any repair.
    pub len: u64,
    pub note: Option<Recovery>,
}

/// Reads (and repairs) `file`, the log opened at `path`; `state_path` is `<path>.chain`.
pub(super) fn start(file: &File, path: &Path, state_path: &Path) -> io::Result<Start> {
    let mut len = file.metadata()?.len();
    let mut reasons = Vec::new();
    let mut torn_tail = None;
    let state = std::fs::read_to_string(state_path)
        .ok()
        .and_then(|t| ChainState::decode(&t));

    if len > 0 {
        let last_nl = rfind_newline(file, len)?;
        if last_nl != Some(len - 1) {
            let keep = last_nl.map_or(0, |p| p + 1);
            let torn = read_range(file, keep, len.min(keep + TORN_QUOTE_MAX as u64))?;
            reasons.push(format!(
                "incomplete last line ({} bytes without newline) removed from the end of {}",
                len - keep,
                path.display()
            ));
            torn_tail = Some(String::from_utf8_lossy(&torn).into_owned());
            file.set_len(keep)?;
            len = keep;
        }
    }

    let last = if len > 0 {
        let line = last_line(file, len)?;
        let hash = sha256_hex(&line);
        let seq = match Link::parse(&line) {
            Ok(l) => l.seq,
            Err(e) => {
                reasons.push(format!(
                    "last line of {} is not an audit record: {e}",
                    path.display()
                ));
                state.as_ref().map_or(0, |s| s.seq)
            }
        };
        if let Some(s) = &state
            && (s.seq > seq || (s.seq == seq && s.hash != hash))
        {
            reasons.push(format!(
                "{} records seq {} (hash {}) but the log ends at seq {seq} (hash {hash}): lines lost or removed",
                state_path.display(),
                s.seq,
                s.hash
            ));
        }
        ChainState { seq, hash }
    } else {
        let rotated = rotated_last(path);
        match (state, rotated) {
            (Some(s), Some(r)) if r.seq > s.seq => r,
            (Some(s), _) => s,
            (None, Some(r)) => r,
            (None, None) => ChainState::genesis(),
        }
    };
    let note = (!reasons.is_empty()).then_some(Recovery { reasons, torn_tail });
    Ok(Start { last, len, note })
}

/// The last line of `<path>.1` (logrotate's newest rotated file without `dateext`).
fn rotated_last(path: &Path) -> Option<ChainState> {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    let f = File::open(name).ok()?;
    let len = f.metadata().ok()?.len();
    if len == 0 || rfind_newline(&f, len).ok()? != Some(len - 1) {
        return None;
    }
    let line = last_line(&f, len).ok()?;
    let seq = Link::parse(&line).ok()?.seq;
    Some(ChainState {
        seq,
        hash: sha256_hex(&line),
    })
}

/// The last line of a file of `len` bytes that ends in a newline, without it.
fn last_line(file: &File, len: u64) -> io::Result<Vec<u8>> {
    let start = rfind_newline(file, len - 1)?.map_or(0, |p| p + 1);
    read_range(file, start, len - 1)
}

/// Position of the last `\n` in the first `end` bytes.
fn rfind_newline(file: &File, end: u64) -> io::Result<Option<u64>> {
    let mut hi = end;
    while hi > 0 {
        let lo = hi.saturating_sub(CHUNK);
        let buf = read_range(file, lo, hi)?;
        if let Some(i) = buf.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(lo + i as u64));
        }
        hi = lo;
    }
    Ok(None)
}

fn read_range(file: &File, from: u64, to: u64) -> io::Result<Vec<u8>> {
    let n = usize::try_from(to - from).map_err(io::Error::other)?;
    let mut buf = vec![0; n];
    file.read_exact_at(&mut buf, from)?;
    Ok(buf)
}
