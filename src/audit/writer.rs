//! The audit file: append one sealed line per event, follow rotation, keep the state.
//!
//! Each batch of lines (one event, or the events one message decision produces together)
//! goes out in one `write(2)` on an `O_APPEND` descriptor with no user-space buffer, so
//! once `append_all` returns the lines survive a crash of the daemon. A failed
//! or short write is rolled back (`ftruncate` to the last complete line) so the file
//! never keeps half a line. Before every write the path is `stat`ed: a different inode
//! (logrotate renamed the file and `create`d a new one) or a missing file makes the
//! writer `fdatasync` the old file and continue the chain in a new one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::chain::{ChainState, compose, sha256_hex};
use super::event::Event;
use super::start::{Recovery, start};

/// Mode of a newly created audit or state file (the umask may take away more).
pub const FILE_MODE: u32 = 0o640;

pub(super) struct Writer {
    path: PathBuf,
    state_path: PathBuf,
    file: Arc<File>,
    state_file: Option<Arc<File>>,
    /// (device, inode) of `file`.
    ident: (u64, u64),
    /// Bytes of complete lines in `file`.
    len: u64,
    last: ChainState,
    /// A failed write could not be rolled back yet.
    rollback: bool,
    dirty: bool,
    sync_each: bool,
    pending: Option<Recovery>,
    lost: u64,
    lost_error: Option<String>,
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)
}

fn open_state(path: &Path, state: &ChainState) -> Option<Arc<File>> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .and_then(|f| {
            let text = state.encode();
            f.write_all_at(text.as_bytes(), 0)?;
            f.set_len(text.len() as u64)?;
            Ok(f)
        });
    match f {
        Ok(f) => Some(Arc::new(f)),
        Err(e) => {
            tracing::warn!(
                target: "nta7516_milter::audit",
                path = %path.display(),
                error = %e,
                "audit chain state file not writable: after a rotation while the daemon is down the new file may not link to the old one"
            );
            None
        }
    }
}

/// `<path>.chain`.
pub fn state_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".chain");
    PathBuf::from(s)
}

impl Writer {
    pub fn open(path: &Path, sync_each: bool) -> io::Result<Writer> {
        let file = open_log(path)?;
        let state_path = state_path(path);
        let s = start(&file, path, &state_path)?;
        let m = file.metadata()?;
        let state_file = open_state(&state_path, &s.last);
        Ok(Writer {
            path: path.to_path_buf(),
            state_path,
            file: Arc::new(file),
            state_file,
            ident: (m.dev(), m.ino()),
            len: s.len,
            last: s.last,
            rollback: false,
            dirty: false,
            sync_each,
            pending: s.note,
            lost: 0,
            lost_error: None,
        })
    }

    /// The `audit_log_recovered` event owed before the next line, if any.
    pub fn pending(&self) -> Option<Event> {
        if self.pending.is_none() && self.lost == 0 {
            return None;
        }
        let mut reasons = self
            .pending
            .as_ref()
            .map(|p| p.reasons.clone())
            .unwrap_or_default();
        if self.lost > 0 {
            reasons.push(format!(
                "{} event(s) could not be written to the file (they are in the journal): {}",
                self.lost,
                self.lost_error.as_deref().unwrap_or("unknown error")
            ));
        }
        Some(Event::AuditLogRecovered {
            reason: reasons.join("; "),
            lost_events: self.lost,
            torn_tail: self.pending.as_ref().and_then(|p| p.torn_tail.clone()),
        })
    }

    pub fn clear_pending(&mut self) {
        self.pending = None;
        self.lost = 0;
        self.lost_error = None;
    }

    /// Counts an event that did not reach the file.
    pub fn lost(&mut self, error: &io::Error) {
        self.lost += 1;
        self.lost_error.get_or_insert_with(|| error.to_string());
    }

    /// Appends the lines for `entries` (event id, time, body) in one `write(2)`: all of
    /// them or, after a rollback, none. Returns the `seq` of the first.
    pub fn append_all(&mut self, entries: &[(&str, &str, &[u8])]) -> io::Result<u64> {
        self.follow()?;
        let first = self.last.seq + 1;
        let mut last = self.last.clone();
        let mut out = Vec::new();
        for (event_id, time, body) in entries {
            let seq = last.seq + 1;
            let line = compose(seq, &last.hash, event_id, time, body);
            last = ChainState {
                seq,
                hash: sha256_hex(&line),
            };
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
        if let Err(e) = (&*self.file).write_all(&out) {
            self.rollback = self.file.set_len(self.len).is_err();
            return Err(e);
        }
        self.len += out.len() as u64;
        self.last = last;
        self.dirty = true;
        if let Some(s) = &self.state_file {
            // Best effort: the log is the authority; the state only bridges a rotation
            // that happens while the daemon is down.
            let _ = s.write_all_at(self.last.encode().as_bytes(), 0);
        }
        if self.sync_each {
            // The lines are written (a daemon crash cannot lose them); a failed flush to
            // disk is reported, not counted as lost events.
            if let Err(e) = self.sync_now() {
                tracing::error!(target: "nta7516_milter::audit", error = %e, "audit log fdatasync failed");
            }
        }
        Ok(first)
    }

    /// Notices rotation, removal, truncation or foreign appends before writing.
    fn follow(&mut self) -> io::Result<()> {
        match std::fs::metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.ident => {
                if self.rollback {
                    self.file.set_len(self.len)?;
                    self.rollback = false;
                } else if m.len() != self.len {
                    self.note(format!(
                        "{} changed size outside the daemon ({} bytes expected, {} found; copytruncate or an editor?)",
                        self.path.display(),
                        self.len,
                        m.len()
                    ));
                    self.len = m.len();
                }
                Ok(())
            }
            Ok(_) => self.reopen(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.reopen(),
            Err(e) => Err(e),
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        let file = open_log(&self.path)?;
        let m = file.metadata()?;
        // The rotated file's last lines are now final: make them durable.
        let _ = self.file.sync_data();
        if m.len() > 0 {
            self.note(format!(
                "new {} was not empty ({} bytes) when the chain moved to it",
                self.path.display(),
                m.len()
            ));
        }
        self.file = Arc::new(file);
        self.ident = (m.dev(), m.ino());
        self.len = m.len();
        self.rollback = false;
        self.state_file = open_state(&self.state_path, &self.last);
        tracing::info!(
            target: "nta7516_milter::audit",
            path = %self.path.display(),
            seq = self.last.seq,
            "audit log rotated: chain continues in the new file"
        );
        Ok(())
    }

    fn note(&mut self, reason: String) {
        tracing::warn!(target: "nta7516_milter::audit", "{reason}");
        self.pending
            .get_or_insert_with(|| Recovery {
                reasons: Vec::new(),
                torn_tail: None,
            })
            .reasons
            .push(reason);
    }

    /// Handles to `fdatasync` if anything was written since the last call.
    pub fn take_dirty(&mut self) -> Option<(Arc<File>, Option<Arc<File>>)> {
        std::mem::take(&mut self.dirty).then(|| (self.file.clone(), self.state_file.clone()))
    }

    pub fn sync_now(&mut self) -> io::Result<()> {
        self.dirty = false;
        if let Some(s) = &self.state_file {
            let _ = s.sync_data();
        }
        self.file.sync_data()
    }
}
