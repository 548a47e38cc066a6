//! SMS providers that carry the one-time code: `webhook`, `cm`, `spryng`, `messagebird`.

use crate::config::portal::SmsConfig;
use crate::portal::phone::Phone;

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The provider refused or could not be reached; the recipient is told "try again later"
    /// and the failure is audited with this text (never the token).
    #[error("SMS provider error: {0}")]
    Provider(String),
}

/// One configured provider.
#[derive(Debug, Clone)]
pub struct SmsGateway {
    pub config: SmsConfig,
}

impl SmsGateway {
    /// Sends `text` to `to`; returns the provider's reference for the audit trail.
    pub async fn send(&self, to: &Phone, text: &str, reference: &str) -> Result<String, SmsError> {
        // Scaffolding: replaced by the provider implementations.
        let _ = (to, text, reference);
        Err(SmsError::Provider("SMS providers not built yet".into()))
    }
}
