//! Background `fdatasync` of the audit file, at most once per interval, and a last one
//! when the auditor is dropped. The sync runs on cloned handles outside the writer's
//! lock, so writers never wait for the disk.

use std::io;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::writer::Writer;

pub(super) fn lock(m: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) struct Syncer {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Syncer {
    pub fn spawn(writer: Arc<Mutex<Writer>>, every: Duration) -> io::Result<Syncer> {
        let (stop, rx) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("audit-fsync".into())
            .spawn(move || {
                // Until the auditor drops the sender (Disconnected).
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    sync_dirty(&writer);
                }
                if let Err(e) = lock(&writer).sync_now() {
                    report(&e);
                }
            })?;
        Ok(Syncer {
            stop: Some(stop),
            handle: Some(handle),
        })
    }
}

fn sync_dirty(writer: &Mutex<Writer>) {
    let Some((file, state)) = lock(writer).take_dirty() else {
        return;
    };
    if let Some(s) = state {
        let _ = s.sync_data();
    }
    if let Err(e) = file.sync_data() {
        report(&e);
    }
}

fn report(e: &io::Error) {
    tracing::error!(target: "nta7516_milter::audit", error = %e, "audit log fdatasync failed");
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
