//! The notification mail: content-free (organisation, one link), submitted with the MTA's
//! `sendmail` so that the milter signs it and it takes the standard route.
//!
//! Interface shared by the intake (which calls [`Notifier::send`] after a message is stored)
//! and the web side; the body is built in this module.

use crate::portal::phone::Phone;

/// One notification for one recipient of one stored message.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The portal's id of the stored message (never shown in the mail).
    pub message: String,
    /// The recipient's address, the envelope recipient of the notification.
    pub recipient: String,
    /// The full link, `public_url` + path + token; the only URL in the mail.
    pub link: String,
    /// The masked number the code will go to, shown so the recipient knows what to expect.
    pub phone: Phone,
}

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    /// Submission failed in a way a later retry can fix (sendmail missing, exit 75, ...).
    #[error("notification not submitted: {0}")]
    Temporary(String),
}

/// Submits notifications through the MTA's `sendmail`.
#[derive(Debug, Clone)]
pub struct Notifier {
    pub sendmail: std::path::PathBuf,
    pub from: String,
}

impl Notifier {
    /// Submits one notification; `Ok` once `sendmail` accepted it (exit 0).
    pub async fn send(&self, notice: &Notice) -> Result<(), NoticeError> {
        // Scaffolding: the body is written with the notification text.
        let _ = notice;
        Err(NoticeError::Temporary(
            "notification mail not built yet".into(),
        ))
    }
}
