//! Removes expired rows in small batches, so cleaning up never stalls requests.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::store::{self, Store};

const BATCH: i64 = 500;
/// The most of its time the janitor spends deleting, in percent. Expired rows pile up by the
/// million only after downtime (or a bulk load); working such a backlog off at full speed took
/// half of a database core for minutes on end, which requests felt as half their throughput.
/// A quarter still keeps up with expiry at the highest token issue rate of a two-core machine
/// (three rows per issue, 3-8 µs each to delete) with room to spare.
const BUSY_PERCENT: u32 = 25;
/// The shortest rest between batches.
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
/// transaction beside the requests' writes (on SQLite, in the same group commits; on PostgreSQL,
/// on a connection of its own, so that no group commit of requests waits for it).
pub async fn sweep(db: &Store, now: i64) -> Result<u64, store::StoreError> {
    let mut total = 0;
    loop {
        let began = Instant::now();
        let mut batch = store::tokens::delete_expired(now, BATCH);
        batch.push(store::sessions::delete_expired(now, BATCH));
        batch.push(store::idempotency::delete_older_than(now - IDEMPOTENCY_WINDOW, BATCH));
        let removed = db.write_apart(batch).await?;
        total += removed;
        if removed == 0 {
            return Ok(total);
        }
        tokio::time::sleep(rest_after(began.elapsed())).await;
    }
}

/// The rest after a batch that took `busy`, which keeps the janitor at [`BUSY_PERCENT`] of its
/// time: the backlog is worked off beside the requests instead of ahead of them.
fn rest_after(busy: Duration) -> Duration {
    (busy * (100 - BUSY_PERCENT) / BUSY_PERCENT).max(PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_janitor_rests_three_times_as_long_as_it_worked_and_never_less_than_the_pause() {
        assert_eq!(rest_after(Duration::from_millis(4)), Duration::from_millis(12));
        assert_eq!(rest_after(Duration::from_micros(100)), PAUSE);
    }
}
