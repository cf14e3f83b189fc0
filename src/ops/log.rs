//! Where a serving process's log lines go: gathered in memory and written to stderr together, by a
//! thread of their own, instead of one `write` call per line.
//!
//! A request's log line cost about as much in its `write` call as in its formatting: a syscall
//! per request, which on a busy read path is several percent of the server's CPU. Gathered, the
//! lines of a whole burst leave in one call. What that costs:
//! - an info line reaches stderr up to [`FLUSH_INTERVAL`] after it was logged;
//! - warnings and errors are written at once, with every line before them, so a problem is on
//!   disk when it is reported and the order of lines never changes;
//! - the lines of the last [`FLUSH_INTERVAL`] are lost if the process is killed outright
//!   (they are written on shutdown and when the process panics). Request lines are not the audit
//!   log, which is in the database.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long an info line may wait in memory before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Lines waiting beyond this many bytes are written without waiting for the interval.
const HIGH_WATER: usize = 64 * 1024;

/// A handle on the buffer; clones share it.
#[derive(Clone)]
pub struct LogBuffer(Arc<Shared>);

struct Shared {
    waiting: Mutex<Vec<u8>>,
    /// Signalled when lines arrive in an empty buffer, or the buffer passes [`HIGH_WATER`].
    arrived: Condvar,
    sink: Mutex<Box<dyn Write + Send>>,
    interval: Duration,
}

impl LogBuffer {
    /// A buffer writing to stderr, with its writer thread started. The process's first buffer is
    /// also the one [`flush_process_log`] flushes (on shutdown and on panic).
    pub fn stderr() -> std::io::Result<LogBuffer> {
        let buffer = Self::start(Box::new(std::io::stderr()), FLUSH_INTERVAL)?;
        if PROCESS_LOG.set(buffer.clone()).is_ok() {
            let previous = std::panic::take_hook();
            let shared = buffer.0.clone();
            std::panic::set_hook(Box::new(move |info| {
                // Not if this thread panicked while writing: it holds the sink.
                if let Ok(mut sink) = shared.sink.try_lock() {
                    shared.write_out_to(&mut sink);
                }
                previous(info);
            }));
        }
        Ok(buffer)
    }

    fn start(sink: Box<dyn Write + Send>, interval: Duration) -> std::io::Result<LogBuffer> {
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Vec::with_capacity(HIGH_WATER)),
            arrived: Condvar::new(),
            sink: Mutex::new(sink),
            interval,
        });
        let writer = shared.clone();
        std::thread::Builder::new().name("tessera-log".into()).spawn(move || writer.write_out_forever())?;
        Ok(LogBuffer(shared))
    }

    /// Writes every line waiting, now.
    pub fn flush(&self) {
        self.0.write_out();
    }
}

static PROCESS_LOG: OnceLock<LogBuffer> = OnceLock::new();

/// Writes the lines the process's [`LogBuffer`] holds, if it has one (on shutdown).
pub fn flush_process_log() {
    if let Some(buffer) = PROCESS_LOG.get() {
        buffer.flush();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves bytes, not a broken invariant.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn write_out_forever(&self) {
        loop {
            let mut waiting = lock(&self.waiting);
            while waiting.is_empty() {
                waiting = self.arrived.wait(waiting).unwrap_or_else(PoisonError::into_inner);
            }
            // Let a burst gather, unless it is already large.
            if waiting.len() < HIGH_WATER {
                waiting = self.arrived.wait_timeout(waiting, self.interval).unwrap_or_else(PoisonError::into_inner).0;
            }
            drop(waiting);
            self.write_out();
        }
    }

    fn write_out(&self) {
        self.write_out_to(&mut lock(&self.sink));
    }

    /// The sink's lock is taken before the lines and held while writing them, so that two
    /// writers cannot reorder the batches they took.
    fn write_out_to(&self, sink: &mut Box<dyn Write + Send>) {
        let lines = std::mem::replace(&mut *lock(&self.waiting), Vec::with_capacity(HIGH_WATER));
        if !lines.is_empty() {
            // Nowhere to report a failing stderr.
            let _ = sink.write_all(&lines).and_then(|()| sink.flush());
        }
    }

    fn append(&self, line: &[u8]) {
        let mut waiting = lock(&self.waiting);
        let was_empty = waiting.is_empty();
        waiting.extend_from_slice(line);
        let large = waiting.len() >= HIGH_WATER;
        drop(waiting);
        if was_empty || large {
            self.arrived.notify_one();
        }
    }
}

/// What `tracing` writes one line through.
pub struct LineWriter<'a> {
    buffer: &'a Shared,
    at_once: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if self.at_once {
            self.buffer.write_out();
        }
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter { buffer: &self.0, at_once: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter<'a> {
        LineWriter { buffer: &self.0, at_once: *meta.level() <= Level::WARN }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink whose bytes the test can read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).expect("utf-8")
        }
    }

    /// Each line's level and message, without the target.
    fn lines(sink: &Captured) -> Vec<String> {
        sink.text()
            .lines()
            .map(|line| line.split_whitespace().filter(|w| !w.ends_with(':')).collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// Logs through a real `tracing` subscriber writing to `buffer`.
    fn logged(buffer: &LogBuffer, log: impl FnOnce()) {
        let subscriber = tracing_subscriber::fmt().with_ansi(false).without_time().with_writer(buffer.clone()).finish();
        tracing::subscriber::with_default(subscriber, log);
    }

    #[test]
    fn info_lines_wait_and_a_warning_takes_them_along_in_order() {
        let sink = Captured::default();
        // An interval longer than the test: only a warning or a flush writes anything.
        let buffer = LogBuffer::start(Box::new(sink.clone()), Duration::from_secs(600)).expect("start");
        logged(&buffer, || {
            tracing::info!("one");
            tracing::info!("two");
        });
        assert_eq!(sink.text(), "", "info lines are gathered, not written one by one");
        logged(&buffer, || tracing::warn!("three"));
        assert_eq!(
            lines(&sink),
            ["INFO one", "INFO two", "WARN three"],
            "a warning is written at once, after what came before it"
        );

        logged(&buffer, || tracing::info!("four"));
        assert_eq!(lines(&sink).len(), 3);
        logged(&buffer, || tracing::error!("five"));
        logged(&buffer, || tracing::info!("six"));
        buffer.flush();
        assert_eq!(lines(&sink), ["INFO one", "INFO two", "WARN three", "INFO four", "ERROR five", "INFO six"]);
    }

    #[test]
    fn info_lines_are_written_after_the_interval_without_a_flush() {
        let sink = Captured::default();
        let buffer = LogBuffer::start(Box::new(sink.clone()), Duration::from_millis(20)).expect("start");
        logged(&buffer, || tracing::info!("one"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while lines(&sink).is_empty() {
            assert!(std::time::Instant::now() < deadline, "the line was never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(lines(&sink), ["INFO one"]);
    }
}
