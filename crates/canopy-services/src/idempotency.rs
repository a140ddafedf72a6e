//! Stored first responses for `Idempotency-Key` replays (the HTTP layer decides what to keep).

use canopy_core::Error;
pub use canopy_store::idempotency::IdemRow;

use crate::Services;
use crate::limits::IDEMPOTENCY_TTL_MS;

impl Services {
    /// Claims `(key, idem_key)` for a request with body hash `hash`: `None` when this call
    /// claimed it, else the record already there (finished or still in progress).
    pub async fn idempotency_claim(
        &self,
        key_id: &str,
        idem_key: &str,
        hash: &str,
    ) -> Result<Option<IdemRow>, Error> {
        let now = canopy_core::time::now_ms();
        canopy_store::idempotency::claim(
            self.store(),
            key_id,
            idem_key,
            hash,
            now,
            IDEMPOTENCY_TTL_MS,
        )
        .await
    }

    pub async fn idempotency_complete(
        &self,
        key_id: &str,
        idem_key: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), Error> {
        canopy_store::idempotency::complete(
            self.store(),
            key_id,
            idem_key,
            i64::from(status),
            content_type,
            body,
        )
        .await
    }

    pub async fn idempotency_release(&self, key_id: &str, idem_key: &str) -> Result<(), Error> {
        canopy_store::idempotency::release(self.store(), key_id, idem_key).await
    }
}
