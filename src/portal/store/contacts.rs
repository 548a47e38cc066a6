//! The address book: the mobile number per recipient address, so that mail to a known
//! patient needs no number in the message (`portal contacts import|add|remove|list`).
//! The number is sealed with a key derived from the master key (as every number in the
//! store); the address is kept in lower case, as the intake compares it.

use sqlx::Row;

use super::{Store, StoreError, now};
use crate::portal::crypto::Dek;
use crate::portal::phone::Phone;

/// Label of the address book's key under the master key.
const CONTACTS_LABEL: &[u8] = b"contacts";

fn context(address: &str) -> Vec<u8> {
    [b"contact|".as_slice(), address.as_bytes()].concat()
}

/// One entry of the address book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub address: String,
    pub phone: Phone,
    /// Unix seconds.
    pub updated_at: i64,
}

impl Store {
    fn contacts_key(&self) -> Dek {
        Dek::derived(self.key.subkey(CONTACTS_LABEL))
    }

    /// Sets (adds or replaces) the number of `address`.
    pub async fn contact_set(&self, address: &str, phone: &Phone) -> Result<(), StoreError> {
        let address = address.to_ascii_lowercase();
        let sealed = self
            .contacts_key()
            .seal_item(&context(&address), phone.e164().as_bytes())?;
        sqlx::query(
            "INSERT INTO portal_contacts (address, phone_enc, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (address) DO UPDATE SET phone_enc = excluded.phone_enc, \
             updated_at = excluded.updated_at",
        )
        .bind(address)
        .bind(sealed)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes `address`; false when it was not in the book.
    pub async fn contact_remove(&self, address: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM portal_contacts WHERE address = $1")
            .bind(address.to_ascii_lowercase())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(done > 0)
    }

    /// The number of `address`, if the book has one.
    pub async fn contact(&self, address: &str) -> Result<Option<Phone>, StoreError> {
        let address = address.to_ascii_lowercase();
        let row = sqlx::query("SELECT phone_enc FROM portal_contacts WHERE address = $1")
            .bind(address.clone())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.contact_phone(&address, &r.try_get::<Vec<u8>, _>("phone_enc")?))
            .transpose()
    }

    /// The whole book, by address.
    pub async fn contacts(&self) -> Result<Vec<Contact>, StoreError> {
        let rows = sqlx::query(
            "SELECT address, phone_enc, updated_at FROM portal_contacts ORDER BY address",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let address: String = r.try_get("address")?;
                Ok(Contact {
                    phone: self.contact_phone(&address, &r.try_get::<Vec<u8>, _>("phone_enc")?)?,
                    updated_at: r.try_get("updated_at")?,
                    address,
                })
            })
            .collect()
    }

    fn contact_phone(&self, address: &str, sealed: &[u8]) -> Result<Phone, StoreError> {
        let plain = self.contacts_key().open_item(&context(address), sealed)?;
        let text =
            String::from_utf8(plain).map_err(|_| StoreError::Corrupt("contact number".into()))?;
        Phone::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::portal::StoreLocation;
    use crate::portal::crypto::MasterKey;

    #[tokio::test]
    async fn set_replace_remove_and_sealed_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(
            &StoreLocation::Sqlite(dir.path().join("p.db")),
            Arc::new(MasterKey::from_bytes(&[2; 32])),
        )
        .await
        .unwrap();
        let a = Phone::parse("06-1234 5678").unwrap();
        let b = Phone::parse("+31687654321").unwrap();
        s.contact_set("Patient@Example.org", &a).await.unwrap();
        assert_eq!(s.contact("patient@example.org").await.unwrap(), Some(a));
        s.contact_set("patient@example.org", &b).await.unwrap();
        assert_eq!(
            s.contact("PATIENT@example.org").await.unwrap(),
            Some(b.clone())
        );
        assert_eq!(s.contacts().await.unwrap().len(), 1);
        assert_eq!(s.contacts().await.unwrap()[0].phone, b);
        // Only ciphertext in the database.
        let raw: Vec<u8> = sqlx::query_scalar("SELECT phone_enc FROM portal_contacts")
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert!(!raw.windows(4).any(|w| w == b"8765"));
        // Moved to another address, the sealed number does not open.
        sqlx::query("UPDATE portal_contacts SET address = 'other@example.org'")
            .execute(s.pool())
            .await
            .unwrap();
        assert!(s.contact("other@example.org").await.is_err());
        assert!(s.contact_remove("other@example.org").await.unwrap());
        assert!(!s.contact_remove("other@example.org").await.unwrap());
        assert_eq!(s.contact("patient@example.org").await.unwrap(), None);
    }
}
