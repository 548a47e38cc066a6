//! The message store as the web side reads it.

use super::{BoxFuture, MessageSource, MessageState, Recipient, SourceError};
use crate::portal::store::{self, RecipientRecord, Store, StoreError};

fn recipient(r: RecipientRecord) -> Recipient {
    // No number means the key is gone (expired): nothing can be unlocked any more.
    let state = match (r.state, &r.phone) {
        (store::MessageState::Live, Some(_)) => MessageState::Live,
        (store::MessageState::Withdrawn, _) => MessageState::Withdrawn,
        _ => MessageState::Gone,
    };
    Recipient {
        id: r.id,
        message_id: r.message_id,
        address: r.address,
        phone: r.phone,
        sender: r.sender,
        state,
        expires_at: r.expires_at,
    }
}

fn err(e: StoreError) -> SourceError {
    SourceError(e.to_string())
}

impl MessageSource for Store {
    fn recipient_by_token_hash<'a>(
        &'a self,
        hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<Recipient>, SourceError>> {
        Box::pin(async move {
            Ok(Store::recipient_by_token_hash(self, hash)
                .await
                .map_err(err)?
                .map(recipient))
        })
    }

    fn read_message<'a>(
        &'a self,
        message_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, SourceError>> {
        Box::pin(async move { Store::read_message(self, message_id).await.map_err(err) })
    }
}
