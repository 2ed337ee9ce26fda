//! Where the server's log lines go: a buffer in memory, written out by a thread of its own
//! at most [`FLUSH_EVERY`] after a line came (at once when it holds [`FLUSH_AT`] bytes).
//!
//! A request appends its line to the buffer and goes on: it never waits for the output (a
//! terminal, a pipe to journald) unless [`MAX_WAITING`] bytes wait already, and then it waits
//! for room, so no line is lost. The thread is woken by the clock, not by each line: under
//! load one write carries many lines, and no thread is woken per line (the first line of a
//! batch wakes it; an idle server's thread sleeps). [`Guard`] writes what is left when it is
//! dropped at exit. Should the thread not start, each line is written by its caller.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Longest time a line waits in the buffer (the thread's own wake-up aside).
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// Bytes waiting from which the thread writes at once.
pub const FLUSH_AT: usize = 64 * 1024;

/// Bytes waiting from which a new line waits for room.
pub const MAX_WAITING: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    stop: bool,
}

struct Shared {
    buffer: Mutex<Buffer>,
    /// Signalled when the buffer was taken (room for waiting lines) or should be.
    changed: Condvar,
    /// Where the lines go (written by the thread, or by the callers without one).
    out: Mutex<Box<dyn Write + Send>>,
    /// Whether the thread runs.
    threaded: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Writes `bytes` out (nowhere to report a failed write of the log itself).
    fn write_out(&self, bytes: &[u8]) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }
}

fn lock(s: &Shared) -> MutexGuard<'_, Buffer> {
    s.buffer.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writer handed to `tracing_subscriber` (cheap to clone).
#[derive(Clone)]
pub struct LogSink(Arc<Shared>);

/// Stops the thread and writes what is left when dropped.
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogSink {
    /// Starts the thread writing to `out`; without a thread (it could not be started) the
    /// lines are written by the callers.
    pub fn start(out: impl Write + Send + 'static) -> (LogSink, Guard) {
        let shared = Arc::new(Shared {
            buffer: Mutex::default(),
            changed: Condvar::new(),
            out: Mutex::new(Box::new(out)),
            threaded: std::sync::atomic::AtomicBool::new(true),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log".into())
            .spawn(move || run(&s))
            .ok();
        if thread.is_none() {
            shared
                .threaded
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        (LogSink(shared.clone()), Guard { shared, thread })
    }
}

/// The thread: sleeps until a line comes, gathers the lines of the next [`FLUSH_EVERY`] (less
/// when the buffer fills) and writes them.
fn run(s: &Shared) {
    loop {
        let mut b = lock(s);
        while b.bytes.is_empty() && !b.stop {
            b = s.changed.wait(b).unwrap_or_else(|e| e.into_inner());
        }
        // the first line is here: gather those that follow it for a moment
        if b.bytes.len() < FLUSH_AT && !b.stop {
            b = s
                .changed
                .wait_timeout(b, FLUSH_EVERY)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let bytes = std::mem::take(&mut b.bytes);
        let stop = b.stop;
        drop(b);
        s.changed.notify_all();
        if !bytes.is_empty() {
            s.write_out(&bytes);
        }
        if stop && lock(s).bytes.is_empty() {
            return;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        lock(&self.shared).stop = true;
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One line being written.
pub struct LineWriter<'a>(&'a Shared);

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let s = self.0;
        if !s.threaded.load(std::sync::atomic::Ordering::Relaxed) {
            s.write_out(line);
            return Ok(line.len());
        }
        let mut b = lock(s);
        while b.bytes.len() >= MAX_WAITING && !b.stop {
            b = s.changed.wait(b).unwrap_or_else(|e| e.into_inner());
        }
        let first = b.bytes.is_empty();
        b.bytes.extend_from_slice(line);
        let full = b.bytes.len() >= FLUSH_AT;
        drop(b);
        if first || full {
            s.changed.notify_all();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test can read while the sink writes to it.
    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<Vec<u8>>>);

    impl Write for Out {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("out").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text(out: &Out) -> String {
        String::from_utf8(out.0.lock().expect("out").clone()).expect("utf-8")
    }

    #[test]
    fn without_the_thread_each_line_is_written_by_its_caller() {
        use tracing_subscriber::fmt::MakeWriter;
        let out = Out::default();
        let sink = LogSink(Arc::new(Shared {
            buffer: Mutex::default(),
            changed: Condvar::new(),
            out: Mutex::new(Box::new(out.clone())),
            threaded: std::sync::atomic::AtomicBool::new(false),
        }));
        sink.make_writer().write_all(b"one\n").expect("write");
        assert_eq!(text(&out), "one\n");
    }

    #[test]
    fn lines_are_written_in_order_soon_and_all_at_exit() {
        use tracing_subscriber::fmt::MakeWriter;
        let out = Out::default();
        let (sink, guard) = LogSink::start(out.clone());
        sink.make_writer().write_all(b"one\n").expect("write");
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while text(&out).is_empty() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(text(&out), "one\n", "written without a flush by the caller");
        let many: Vec<String> = (0..20_000).map(|i| format!("line {i}\n")).collect();
        for l in &many {
            sink.make_writer().write_all(l.as_bytes()).expect("write");
        }
        drop(guard);
        assert_eq!(text(&out), format!("one\n{}", many.concat()));
    }
}
