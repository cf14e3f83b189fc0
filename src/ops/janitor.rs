//! Removes expired rows in small batches, so cleaning up never stalls requests.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::store::{self, Store};

const BATCH: i64 = 500;
/// The pause between batches, so that a large backlog of expired rows is worked off beside the
/// requests instead of ahead of them.
const PAUSE: Duration = Duration::from_millis(5);
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

/// One pass: deletes expired rows batch by batch until none are left. Each batch is one short
/// transaction that queues with the requests' writes (on SQLite, in the same group commits).
pub async fn sweep(db: &Store, now: i64) -> Result<u64, store::StoreError> {
    let mut total = 0;
    loop {
        let mut batch = store::tokens::delete_expired(now, BATCH);
        batch.push(store::sessions::delete_expired(now, BATCH));
        batch.push(store::idempotency::delete_older_than(now - IDEMPOTENCY_WINDOW, BATCH));
        let removed = db.write_counting(batch).await?;
        total += removed;
        if removed == 0 {
            return Ok(total);
        }
        tokio::time::sleep(PAUSE).await;
    }
}
