//! Removes expired rows in small batches, so cleaning up never stalls requests.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::store::{self, Store};

const BATCH: i64 = 500;
const PERIOD: Duration = Duration::from_secs(60);
/// How long a POST's first response is remembered for `Idempotency-Key` retries.
pub const IDEMPOTENCY_WINDOW: i64 = 24 * 3600;

pub fn spawn(db: Store) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        loop {
            tick.tick().await;
            if let Err(e) = sweep(&db, crate::time::now()).await {
                tracing::warn!(error = %e, "janitor sweep failed; will retry");
            }
        }
    })
}

/// One pass: deletes expired rows batch by batch until none are left.
pub async fn sweep(db: &Store, now: i64) -> Result<u64, store::StoreError> {
    let mut total = 0;
    loop {
        let removed = store::sessions::delete_expired(db.writer(), now, BATCH).await?
            + store::tokens::delete_expired(db.writer(), now, BATCH).await?
            + store::idempotency::delete_older_than(db.writer(), now - IDEMPOTENCY_WINDOW, BATCH).await?;
        total += removed;
        if removed == 0 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}
