//! Checking a chain across files (oldest first), streaming, stopping at the first break.
//!
//! Per line, in this order: it ends in a newline (else: truncated), it is a JSON audit
//! record, its `hash` seals its bytes, `prev` is the SHA-256 of the line before it, and
//! `seq` is one more than that line's. The first line of the first file may be the
//! genesis (`prev` = 64 zeros, `seq` 1) or link to a file not given: then the start is
//! reported as not verified. When the last file has a `<file>.chain` state record (the
//! live log does), a chain that ends before the recorded position has lost its tail.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use super::chain::{ChainState, GENESIS, Link, seal_ok, sha256_hex};
use super::writer::state_path;

pub use super::lines::MAX_LINE_BYTES;
use super::lines::{Line, Lines};

/// What an intact chain looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub files: usize,
    pub lines: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// SHA-256 of the last line: the next line's `prev`.
    pub last_hash: Option<String>,
    pub start: ChainStart,
    /// Things to tell the reader that do not break the chain.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStart {
    /// No lines at all.
    Empty,
    /// The first line is the genesis: the chain is verified from its very beginning.
    Genesis,
    /// The first line links to a line in a file that was not given.
    Unverified {
        file: PathBuf,
        seq: u64,
        prev: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A file could not be read (CLI exit 2).
    #[error("{}: {source}", file.display())]
    Unreadable { file: PathBuf, source: io::Error },
    /// The first broken link (CLI exit 1). `line` is 1-based within `file`.
    #[error("{}:{line}: chain broken: {problem}", file.display())]
    Broken {
        file: PathBuf,
        line: u64,
        problem: Problem,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The last line has no newline: cut off.
    Truncated,
    /// No newline within `max` bytes: not a line the daemon writes.
    LineTooLong { max: usize },
    /// Not a JSON audit record.
    NotARecord(String),
    /// The `hash` field does not match the line's bytes: the line was altered.
    Altered,
    /// `prev` is not the hash of the line before.
    PrevMismatch {
        /// Where that line is: `None` = same file.
        file: Option<PathBuf>,
        line: u64,
        expected: String,
        found: String,
    },
    /// The genesis may only start a chain.
    GenesisInside {
        prev_file: Option<PathBuf>,
        line: u64,
    },
    /// `seq` is not one more than the previous line's (or 1 at the genesis).
    Seq { expected: u64, found: u64 },
    /// The state record says the chain went further than the files do.
    TailMissing {
        state_file: PathBuf,
        state_seq: u64,
        last_seq: u64,
    },
    /// The state record has another hash for the last line.
    TailDiffers {
        state_file: PathBuf,
        state_hash: String,
        hash: String,
    },
}

fn short(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}

fn at(file: &Option<PathBuf>, line: u64) -> String {
    match file {
        None => format!("line {line}"),
        Some(f) => format!("the last line of {} (line {line})", f.display()),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Truncated => f.write_str("truncated last line (no newline)"),
            Problem::LineTooLong { max } => write!(
                f,
                "line longer than {max} bytes (no newline): not an audit log line"
            ),
            Problem::NotARecord(e) => write!(f, "not an audit record: {e}"),
            Problem::Altered => f.write_str("line altered: its hash does not match its content"),
            Problem::PrevMismatch {
                file,
                line,
                expected,
                found,
            } => write!(
                f,
                "prev does not match {} (sha256 {}…, prev {}…): a line removed, inserted or moved",
                at(file, *line),
                short(expected),
                short(found)
            ),
            Problem::GenesisInside { prev_file, line } => write!(
                f,
                "a new chain (genesis prev) starts after {}",
                at(prev_file, *line)
            ),
            Problem::Seq { expected, found } => write!(f, "seq {found}, expected {expected}"),
            Problem::TailMissing {
                state_file,
                state_seq,
                last_seq,
            } => write!(
                f,
                "{} records seq {state_seq} but the chain ends at seq {last_seq}: lines removed from the end",
                state_file.display()
            ),
            Problem::TailDiffers {
                state_file,
                state_hash,
                hash,
            } => write!(
                f,
                "{} records hash {}… for the last line, it is {}…",
                state_file.display(),
                short(state_hash),
                short(hash)
            ),
        }
    }
}

/// The previous line while walking the chain.
struct Prev {
    file_index: usize,
    line: u64,
    seq: u64,
    hash: String,
}

/// Verifies `paths` as one chain, oldest first.
pub fn verify_files(paths: &[PathBuf]) -> Result<VerifyReport, VerifyError> {
    // Read the state before the files: the daemon writes a line before its state, so a
    // state read first can never be ahead of an intact file.
    let state = paths.last().and_then(|p| {
        let sp = state_path(p);
        let text = std::fs::read_to_string(&sp).ok()?;
        Some((sp, ChainState::decode(&text)))
    });
    let mut report = VerifyReport {
        files: paths.len(),
        lines: 0,
        first_seq: None,
        last_seq: None,
        last_hash: None,
        start: ChainStart::Empty,
        notes: Vec::new(),
    };
    let mut prev: Option<Prev> = None;
    let mut lines_in_last = 0;
    for i in 0..paths.len() {
        lines_in_last = verify_file(paths, i, &mut prev, &mut report)?;
    }
    if let Some(p) = &prev {
        report.last_seq = Some(p.seq);
        report.last_hash = Some(p.hash.clone());
    }
    match (state, paths.last()) {
        (Some((sp, Some(s))), Some(last)) => check_state(sp, s, &prev, last, lines_in_last)?,
        (Some((sp, None)), _) => report.notes.push(format!(
            "{}: not a chain state record, ignored",
            sp.display()
        )),
        _ => {}
    }
    Ok(report)
}

fn check_state(
    state_file: PathBuf,
    s: ChainState,
    prev: &Option<Prev>,
    last: &Path,
    lines_in_last: u64,
) -> Result<(), VerifyError> {
    let (seq, hash) = prev.as_ref().map_or((0, GENESIS), |p| (p.seq, &p.hash));
    let (line, problem) = if s.seq > seq {
        (
            lines_in_last + 1,
            Problem::TailMissing {
                state_file,
                state_seq: s.seq,
                last_seq: seq,
            },
        )
    } else if s.seq == seq && s.hash != hash {
        (
            lines_in_last,
            Problem::TailDiffers {
                state_file,
                state_hash: s.hash,
                hash: hash.to_string(),
            },
        )
    } else {
        return Ok(());
    };
    Err(VerifyError::Broken {
        file: last.to_path_buf(),
        line: line.max(1),
        problem,
    })
}

/// Walks one file; returns its number of lines.
fn verify_file(
    paths: &[PathBuf],
    index: usize,
    prev: &mut Option<Prev>,
    report: &mut VerifyReport,
) -> Result<u64, VerifyError> {
    let path = &paths[index];
    let unreadable = |source| VerifyError::Unreadable {
        file: path.clone(),
        source,
    };
    let mut lines = Lines::new(BufReader::new(File::open(path).map_err(unreadable)?));
    let mut count = 0;
    while let Some((line_no, line)) = lines.next_line().map_err(unreadable)? {
        count = line_no;
        let broken = |problem| VerifyError::Broken {
            file: path.clone(),
            line: line_no,
            problem,
        };
        let line = match line {
            Line::Complete(line) => line,
            Line::TooLong => {
                return Err(broken(Problem::LineTooLong {
                    max: MAX_LINE_BYTES,
                }));
            }
            Line::Unterminated(_) => return Err(broken(Problem::Truncated)),
        };
        let link = Link::parse(line).map_err(|e| broken(Problem::NotARecord(e)))?;
        if !seal_ok(line) {
            return Err(broken(Problem::Altered));
        }
        let expected_seq = match prev.as_ref() {
            None => {
                if link.prev == GENESIS {
                    report.start = ChainStart::Genesis;
                    1
                } else {
                    report.notes.push(format!(
                        "{}:{line_no}: chain start not verified: seq {} links to a line not given (prev {}…)",
                        path.display(),
                        link.seq,
                        short(&link.prev)
                    ));
                    report.start = ChainStart::Unverified {
                        file: path.clone(),
                        seq: link.seq,
                        prev: link.prev.clone(),
                    };
                    link.seq
                }
            }
            Some(p) => {
                let where_ = (p.file_index != index).then(|| paths[p.file_index].clone());
                if link.prev == GENESIS {
                    return Err(broken(Problem::GenesisInside {
                        prev_file: where_,
                        line: p.line,
                    }));
                }
                if link.prev != p.hash {
                    return Err(broken(Problem::PrevMismatch {
                        file: where_,
                        line: p.line,
                        expected: p.hash.clone(),
                        found: link.prev,
                    }));
                }
                p.seq + 1
            }
        };
        if link.seq != expected_seq {
            return Err(broken(Problem::Seq {
                expected: expected_seq,
                found: link.seq,
            }));
        }
        report.first_seq.get_or_insert(link.seq);
        report.lines += 1;
        *prev = Some(Prev {
            file_index: index,
            line: line_no,
            seq: link.seq,
            hash: sha256_hex(line),
        });
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify_one(content: &[u8]) -> Result<VerifyReport, VerifyError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, content).unwrap();
        verify_files(&[path])
    }

    fn problem(content: &[u8]) -> Problem {
        match verify_one(content) {
            Err(VerifyError::Broken { problem, .. }) => problem,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn line_limit() {
        assert_eq!(MAX_LINE_BYTES, 16 << 20);
        // A line of exactly the limit is read (and then judged as a record) ...
        let mut at_limit = vec![b'x'; MAX_LINE_BYTES];
        at_limit.push(b'\n');
        assert!(matches!(problem(&at_limit), Problem::NotARecord(_)));
        // ... one byte more is refused, with or without a newline after it.
        at_limit.insert(0, b'x');
        let too_long = Problem::LineTooLong {
            max: MAX_LINE_BYTES,
        };
        assert_eq!(problem(&at_limit), too_long);
        at_limit.pop();
        assert_eq!(problem(&at_limit), too_long);
        // A short unterminated last line is still a truncation.
        assert_eq!(problem(b"{}"), Problem::Truncated);
    }
}
