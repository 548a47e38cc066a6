//! The audit log (NTA 7516 §6.4.2, NEN 7513): a closed set of typed [`Event`]s, each
//! written as one hash-chained JSON line and sent to tracing (journald fields).
//!
//! # Line format
//!
//! One JSON object per line, keys in this order. Field names are modelled on the Logius
//! NEN 7513 mapping (IHE ATNA style):
//!
//! | key | NEN 7513 / Logius | content |
//! |-----|-------------------|---------|
//! | `seq` | – | position in the chain: 1 at the genesis, continues across rotated files |
//! | `prev` | – | hex SHA-256 of the previous line's bytes (without newline); 64 zeros at the genesis |
//! | `event_id` | `EventID` | `<boot id>-<n>`: 16 random hex digits per process start, `n` counts from 1, so ids are unique across restarts; a gap means an event that only reached the journal |
//! | `time` | `EventDateTime` | UTC, RFC 3339 with milliseconds: `2026-11-22T21:04:05.123Z` |
//! | `event_type` | `EventTypeCode` | `message_received`, `classified`, `recipient_routed`, `footer_added`, `footer_skipped`, `quarantined`, `signed`, `inbound_verified`, `deferred`, `rejected`, `from_not_own` (sender ownership), `would_refuse` (dry run), `headers_removed`, `config_loaded`, `config_reloaded`, `config_refused`, `startup`, `shutdown`, `audit_log_recovered`; the portal's own file: `portal_stored`, `portal_intake_refused`, `portal_notified`, `portal_notify_failed`, `portal_expired`, `portal_shredded`, `portal_revoked`, `portal_receipt_sent`, `portal_receipt_failed`, `portal_opened_notice`, `portal_replied`, `portal_number_asked`, `portal_number_given`, `portal_not_delivered`; its web side: `portal_code_sent`, `portal_code_not_sent`, `portal_code_failed`, `portal_locked`, `portal_lock_notified`, `portal_lock_notice_failed`, `portal_opened`, `portal_viewed`, `portal_downloaded` |
//! | `action` | `EventActionCode` | `C` create, `R` read, `U` update, `D` delete, `E` execute ([`Event::action`]) |
//! | `outcome` | `EventOutcomeIndicator` | 0 success, 4 minor failure (deferred, skipped, refused reload), 8 serious failure (rejected) |
//! | `user` | `UserID` | `{"id", "type"}`, type `sasl_user`, `envelope_sender`, `portal_recipient` or `system` |
//! | `network_access_point` | `NetworkAccessPointTypeCode`, `…ID` | `{"type_code": 2, "id": "192.0.2.7"}` (1 = host name) on `message_received` and the portal's web events (the browser's address), else `null` |
//! | `audit_source` | `AuditSourceID` | `{"id": host name, "software": "nta7516-milter/<version>"}` |
//! | `objects` | `ParticipantObject…` | `[{"type", "id"}]`, type `queue_id`, `message_id`, `sender`, `recipient`, `recipient_domain`, `portal_message` or `config_file` |
//! | `detail` | `ParticipantObjectDetail` | the event's own fields, as in [`Event`] |
//! | `hash` | – | hex SHA-256 of this line up to (not including) `,"hash":"` |
//!
//! Never a message body or Subject. The patient (NEN 7513 "cliënt") is not known to an
//! MTA and is never guessed from content, so there is no field for it. The user of the
//! `message_received` line is the SASL user, else the envelope sender; the later lines
//! of a message are the gateway acting (`system`) and join to it on the queue id.
//!
//! # Failure policy: fail-closed per message, never inside `record`
//!
//! [`Auditor::record`] never blocks on anything but the file's mutex, never returns an
//! error and never panics. Every event goes to tracing whatever happens to the file. A
//! failed file write is counted ([`Auditor::failures`]), logged at ERROR, and turns
//! [`Auditor::healthy`] false until a later line is written. `record` and
//! [`Auditor::record_all`] return whether the lines reached the file, and every answer
//! that lets processing go on depends on it:
//! - the milter answers 451 4.3.0 unless every event of the message's decision was
//!   written (received, headers removed, classified, footer, signed, inbound verdict,
//!   quarantine), and turns an honoured DMARC 550 into a 451 when its `rejected` line
//!   cannot be written;
//! - the map server answers `TEMP` to a `route` lookup whose `recipient_routed` line
//!   cannot be written: the queue manager keeps the message and asks again.
//!
//! Each refusal records a `Deferred`: that record is itself the retry, so health comes
//! back by itself once the disk has room again. Once it does, the file first gets an
//! `audit_log_recovered` line saying how many events only reached the journal. With
//! `[server] dry_run` nothing is refused; the journal says what would have been.
//!
//! Why not fail-open (deliver and log to the journal only): NEN 7513 requires every
//! processing of the data to be logged, reliably and non-repudiably, for five years;
//! the journal is neither append-only nor kept that long, so a gateway that carried on
//! would move healthcare mail with a hole in its audit trail, for exactly the period
//! nobody is looking. A 4xx loses nothing: the sending MTA keeps the message and retries
//! (Postfix for up to five days), so NTA 7516's no-loss requirement still holds; the
//! cost is delay, made loud by the ERROR lines. Why a flag and not an error: some events
//! happen after the last point where an answer can still be 4xx (shutdown, the refusal
//! itself); those stay in the journal and are counted, and only the callers that still
//! decide something look at the flag.
//!
//! # Durability (fsync policy)
//!
//! Each line is written by one `write(2)` on an `O_APPEND` descriptor under a mutex, with
//! no user-space buffer (the few events of one message decision share that write, see
//! [`Auditor::record_all`]): when `record` returns, the line is in the kernel and
//! survives a crash, SIGKILL or OOM kill of the daemon. `fdatasync` runs on a background thread at
//! most once per second when something was written, on the old file at a rotation, in
//! [`Auditor::sync`] and when the auditor is dropped (shutdown). A power loss or kernel
//! crash can therefore cost up to about one second of lines (the journal copy has its
//! own, similar, window). Syncing every line ([`SyncPolicy::EveryLine`]) is available
//! but puts the disk's flush latency (milliseconds on most disks) inside the mutex of
//! every mail event on a two-core gateway; `benches/audit_write.rs` measures both. A
//! failed or short write is cut back to the last complete line, and a torn last line
//! found at start-up is cut off and quoted in an `audit_log_recovered` line, so the file
//! keeps verifying. New files are created with mode 0640.
//!
//! # Rotation
//!
//! Before every write the writer `stat`s the path. When logrotate has renamed the file
//! (with or without `create`), the writer syncs the old file and continues the chain in
//! the new one: its first line's `prev` is the hash of the old file's last line and
//! `seq` goes on. No signal or `postrotate` is needed. After every line the writer also
//! rewrites `<file>.chain`, a fixed-width record of the last `seq` and hash, so that a
//! daemon that finds an empty log at start-up (rotated while it was down) still links
//! to the old file; failing that it reads the last line of `<file>.1`; failing that the
//! chain starts again at the genesis (which `audit verify` reports as a break when the
//! old file is given too). `copytruncate` must not be used: lines written between the
//! copy and the truncation are lost (the writer notices the size change and notes it in
//! an `audit_log_recovered` line).
//!
//! Retention: NEN 7513 lines must be kept at least five years from when they are written
//! (Besluit 27-06-2019, Stcrt. 2019, 38007). A logrotate recipe for that:
//!
//! ```text
//! # /etc/logrotate.d/nta7516-milter: NEN 7513 audit log, kept >= 5 years.
//! /var/log/nta7516-milter/audit.log {
//!     monthly
//!     # 61 monthly files: a line written at the end of a month is deleted 61 months
//!     # later, one at the start 62 months later: always >= 5 years.
//!     rotate 61
//!     # The daemon notices the rename itself and continues the hash chain in the new
//!     # file: no postrotate, no reload. Never use copytruncate (it loses lines).
//!     create 0640 nta7516-milter nta7516-milter
//!     su nta7516-milter nta7516-milter
//!     # Names sort by date, so `audit verify audit.log-* audit.log` is oldest first.
//!     dateext
//!     dateformat -%Y%m%d
//!     # Keep the newest rotated file plain for a moment: a line can still land in it
//!     # between logrotate's rename and the daemon's next stat.
//!     compress
//!     delaycompress
//!     missingok
//!     notifempty
//! }
//! ```
//!
//! Verify the compressed history as one stream (the chain does not care where files
//! end): `nta7516-milter audit verify <(zcat -f audit.log-*) audit.log`.
//!
//! # What the chain proves
//!
//! [`verify_files`] finds any altered byte, a removed, inserted or reordered line, a
//! truncated line, and (with the live `<file>.chain`) lines removed from the end. It does
//! not stop someone with write access from rewriting the whole chain: for that, forward
//! the journal or the file off the host, or write down the last hash that `audit verify`
//! prints somewhere the administrator cannot change.

mod chain;
mod envelope;
mod event;
mod lines;
mod show;
mod start;
mod syncer;
mod trace;
mod verify;
mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use chain::{ChainState, GENESIS, sha256_hex};
pub use event::{Classification, Direction, Event, RouteVerdict, Stage};
pub use show::{Filter, ShowError, Shown, parse_time, render as render_shown, show};
pub use verify::{ChainStart, Problem, VerifyError, VerifyReport, verify_files};
pub use writer::{FILE_MODE, state_path};

use envelope::AuditSource;
use syncer::{Syncer, lock};
use writer::Writer;

/// When the audit file is flushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` after every line, inside the lock.
    EveryLine,
    /// `fdatasync` from a background thread at most this often (default: 1 s).
    Interval(Duration),
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy::Interval(Duration::from_secs(1))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot open the audit log {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot start the audit log's fsync thread: {0}")]
    Thread(io::Error),
}

/// Writes [`Event`]s to the journal and, when configured, to a hash-chained file.
/// `Send + Sync`: share it as `Arc<Auditor>`.
pub struct Auditor {
    path: Option<PathBuf>,
    writer: Option<Arc<Mutex<Writer>>>,
    boot_id: String,
    counter: AtomicU64,
    healthy: AtomicBool,
    failures: AtomicU64,
    writes: AtomicU64,
    source: AuditSource,
    /// Dropped last: joins the fsync thread, which syncs a final time.
    _syncer: Option<Syncer>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("path", &self.path)
            .field("boot_id", &self.boot_id)
            .field("healthy", &self.healthy())
            .field("failures", &self.failures())
            .finish_non_exhaustive()
    }
}

impl Auditor {
    /// `None`: tracing only. `Some(file)`: also the chained file (created 0640 when
    /// missing; its directory must exist), synced once a second.
    pub fn open(file: Option<&Path>) -> Result<Auditor, AuditError> {
        Self::open_with(file, SyncPolicy::default())
    }

    pub fn open_with(file: Option<&Path>, sync: SyncPolicy) -> Result<Auditor, AuditError> {
        let writer = file
            .map(|p| {
                Writer::open(p, sync == SyncPolicy::EveryLine).map_err(|source| AuditError::Open {
                    path: p.to_path_buf(),
                    source,
                })
            })
            .transpose()?
            .map(|w| Arc::new(Mutex::new(w)));
        let syncer = match (&writer, sync) {
            (Some(w), SyncPolicy::Interval(every)) => {
                Some(Syncer::spawn(w.clone(), every).map_err(AuditError::Thread)?)
            }
            _ => None,
        };
        Ok(Auditor {
            path: file.map(Path::to_path_buf),
            writer,
            boot_id: boot_id(),
            counter: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            failures: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            source: AuditSource::local(),
            _syncer: syncer,
        })
    }

    /// Records one event: to tracing always, to the file when there is one. Never
    /// fails and never panics; see the module docs for what a file failure does.
    /// Returns whether the event is in the file (always true without one): a caller
    /// about to let a message pass answers 4xx on false.
    pub fn record(&self, event: Event) -> bool {
        self.record_all(vec![event])
    }

    /// Records events that belong together (one message decision) as consecutive lines
    /// in a single write: fewer system calls per message than one `record` each, and
    /// either all of them reach the file or none does. Same guarantees as `record`.
    /// Returns true when every event is in the file (always without a file, and for no
    /// events), false when none is.
    pub fn record_all(&self, events: Vec<Event>) -> bool {
        let Some(writer) = &self.writer else {
            for event in &events {
                trace::emit(event, &self.next_id(), None);
            }
            return true;
        };
        if events.is_empty() {
            return true;
        }
        let bodies: Vec<Vec<u8>> = events
            .iter()
            .map(|e| envelope::body(e, &self.source))
            .collect();
        let mut recovered = None;
        let (ids, result) = {
            let mut w = lock(writer);
            if let Some(note) = w.pending() {
                let id = self.next_id();
                let b = envelope::body(&note, &self.source);
                if let Ok(seq) = w.append_all(&[(id.as_str(), now().as_str(), b.as_slice())]) {
                    w.clear_pending();
                    recovered = Some((note, id, seq));
                }
            }
            let ids: Vec<String> = events.iter().map(|_| self.next_id()).collect();
            let time = now();
            let entries: Vec<(&str, &str, &[u8])> = ids
                .iter()
                .zip(&bodies)
                .map(|(id, b)| (id.as_str(), time.as_str(), b.as_slice()))
                .collect();
            let result = w.append_all(&entries);
            if let Err(e) = &result {
                for _ in &events {
                    w.lost(e);
                }
            }
            (ids, result)
        };
        if let Some((note, id, seq)) = recovered {
            trace::emit(&note, &id, Some(seq));
        }
        match result {
            Ok(first) => {
                self.healthy.store(true, Ordering::Relaxed);
                self.writes
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                for ((event, id), seq) in events.iter().zip(&ids).zip(first..) {
                    trace::emit(event, id, Some(seq));
                }
                true
            }
            Err(e) => {
                self.healthy.store(false, Ordering::Relaxed);
                let n = self
                    .failures
                    .fetch_add(events.len() as u64, Ordering::Relaxed)
                    + events.len() as u64;
                tracing::error!(
                    target: "nta7516_milter::audit",
                    path = %self.path.as_deref().unwrap_or(Path::new("")).display(),
                    error = %e,
                    event_id = ids.first().map_or("", String::as_str),
                    events = events.len(),
                    failures = n,
                    "audit log write failed: event kept in the journal only; new mail is deferred until the file is writable"
                );
                for (event, id) in events.iter().zip(&ids) {
                    trace::emit(event, id, None);
                }
                false
            }
        }
    }

    /// The audit file, `None` for tracing only.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// False after a failed file write, until a later write succeeds (always true
    /// without a file). For monitoring: decisions use what `record` returns.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Events that could not be written to the file since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Events written to the file since it was opened (0 without a file).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// This process's part of every `event_id`.
    pub fn boot_id(&self) -> &str {
        &self.boot_id
    }

    /// `fdatasync` the file now (call after recording `Shutdown`; dropping the auditor
    /// does it too).
    pub fn sync(&self) -> io::Result<()> {
        match &self.writer {
            Some(w) => lock(w).sync_now(),
            None => Ok(()),
        }
    }

    fn next_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}-{n}", self.boot_id)
    }
}

/// 16 random hex digits (the time and pid if the system RNG fails).
fn boot_id() -> String {
    let mut b = [0u8; 8];
    let n = if aws_lc_rs::rand::fill(&mut b).is_ok() {
        u64::from_be_bytes(b)
    } else {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        t ^ (u64::from(std::process::id()) << 32)
    };
    format!("{n:016x}")
}

/// Now, UTC, RFC 3339 with milliseconds.
fn now() -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(fmt)
        .unwrap_or_default()
}
