//! Write-behind of state files with group commit.
//!
//! A poll hands the new state of its device to [`Writer::submit`] and goes on; ONE
//! writer thread per status directory takes all pending files at once (several polls of one
//! device in between coalesce into the newest state), serialises and writes each atomically
//! and makes the batch durable with one round of syncs:
//! on Linux one `syncfs` for all temporary files before they are renamed, then one sync of
//! the directory (elsewhere every temporary file is synced on its own). A batch starts at
//! most `commit-delay` after its first file was handed over, at once when somebody waits for
//! it ([`Writer::sync`], [`Writer::flush`]). A crash loses at most the batch being
//! collected, never a file's integrity (the rename is atomic).
//!
//! A new file content is written into a temporary file that is then put in place in one
//! step. Creating and freeing a file per write costs the file system most of its time, so
//! the temporary files are a pool of spare files kept in the directory (`.spare.N.tmp`, at
//! most [`MAX_SPARES`]): a spare is overwritten (its blocks stay allocated) and swapped with
//! the old file (`renameat2` with `RENAME_EXCHANGE`, Linux), whose content then is the spare.
//! A device without a file yet, a batch beyond the pool, and file systems or platforms that
//! cannot swap get a fresh temporary file (`.SN.xml.N.tmp`) and a rename. Spares are used
//! only under load (batches of [`SPARES_FROM`] files or more) and removed once the writer
//! has had nothing to write for [`SPARES_IDLE`], so a quiet status directory holds the state
//! files only, like the PHP server's.
//!
//! Until its file is written, the content stays readable through [`Writer::pending`]
//! (read-your-writes). The files waiting are bounded: above [`MAX_BACKLOG`] a poll waits
//! for the batch ([`Writer::backlogged`]), so a disk slower than the polls slows the polls
//! down instead of filling the memory.
//!
//! Before its first batch the writer thread removes the temporary files a crash left behind
//! (polls are answered meanwhile).

use super::DeviceState;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Files waiting to be written above which a poll waits for the batch (each costs its
/// parsed state, a few KB to some tens of KB).
pub const MAX_BACKLOG: usize = 2048;

/// Bytes of parsed states waiting to be written (as the state cache charges them: the bytes
/// the allocator gave them, [`super::cache::cost`]) above
/// which a poll waits for the batch, however few files they are.
pub const MAX_BACKLOG_BYTES: usize = 16 * 1024 * 1024;

/// Spare files kept in the status directory (`.spare.N.tmp`): the first files of a batch
/// are written into them. Each costs the disk space of an old state file.
pub const MAX_SPARES: usize = 1024;

/// Batches of fewer files than this are written without spares (a quiet server keeps its
/// status directory as the PHP server does).
pub const SPARES_FROM: usize = 32;

/// Without files to write for this long, the writer removes its spare files.
pub const SPARES_IDLE: Duration = Duration::from_secs(2);

/// One file waiting to be written.
#[derive(Clone)]
struct Pending {
    generation: u64,
    state: Arc<DeviceState>,
    /// Its estimated memory ([`super::cache::cost`]).
    cost: usize,
}

#[derive(Default)]
struct Queue {
    files: HashMap<Box<str>, Pending>,
    waiters: Vec<Box<dyn FnOnce() + Send>>,
    generation: u64,
    /// Sum of the `cost` of `files`.
    bytes: usize,
    stop: bool,
    /// Remove the spare files after the next batch ([`Writer::close`]).
    release: bool,
}

struct Shared {
    dir: PathBuf,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Held while a batch is written, so a deletion cannot be undone by a late rename.
    io: Mutex<()>,
    delay_ms: std::sync::atomic::AtomicU64,
    /// The server's histogram of batch times.
    timer: crate::ops_metrics::BatchTimer,
}

/// The writer of one status directory (its thread ends when the writer is dropped).
pub struct Writer {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Writer {
    /// Starts the writer thread of `dir` (created here, once, when missing); it first
    /// removes the temporary files a crash left there. Each batch's time goes to `timer`.
    pub fn start(dir: PathBuf, delay: Duration, timer: crate::ops_metrics::BatchTimer) -> Writer {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::error!("cannot create status directory {}: {e}", dir.display());
        }
        let shared = Arc::new(Shared {
            dir,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            io: Mutex::new(()),
            delay_ms: std::sync::atomic::AtomicU64::new(delay.as_millis() as u64),
            timer,
        });
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || {
                remove_leftovers(&s.dir);
                run(&s)
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the state writer: {e}");
        }
        Writer { shared }
    }

    /// Sets the longest wait before a batch is committed (`<server commit-delay>`).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.delay_ms.store(
            delay.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Hands over the new content of the state file of `sn`.
    pub fn submit(&self, sn: &str, state: Arc<DeviceState>) {
        let cost = super::cache::cost(&state);
        self.submit_costed(sn, state, cost);
    }

    /// [`Self::submit`] with the state's estimated memory already known.
    pub fn submit_costed(&self, sn: &str, state: Arc<DeviceState>, cost: usize) {
        let mut q = lock(&self.shared.queue);
        q.generation += 1;
        let generation = q.generation;
        let first = q.files.is_empty();
        let pending = Pending {
            generation,
            state,
            cost,
        };
        q.bytes += cost;
        if let Some(old) = q.files.insert(sn.into(), pending) {
            q.bytes = q.bytes.saturating_sub(old.cost);
        }
        drop(q);
        // the writer waits for the first file of a batch; while it collects one, it waits for
        // its delay (or a waiter) only: waking it for each poll would cost a context switch
        if first {
            self.shared.wake.notify_one();
        }
    }

    /// The content of `sn` not written yet.
    pub fn pending(&self, sn: &str) -> Option<Arc<DeviceState>> {
        lock(&self.shared.queue)
            .files
            .get(sn)
            .map(|p| p.state.clone())
    }

    /// Drops a pending write of `sn` and runs `then` while no batch is being written (for a
    /// deletion).
    pub fn forget<T>(&self, sn: &str, then: impl FnOnce() -> T) -> T {
        let _io = lock(&self.shared.io);
        let mut q = lock(&self.shared.queue);
        if let Some(old) = q.files.remove(sn) {
            q.bytes = q.bytes.saturating_sub(old.cost);
        }
        drop(q);
        then()
    }

    /// Number of files waiting.
    pub fn backlog(&self) -> usize {
        lock(&self.shared.queue).files.len()
    }

    /// Bytes of the states waiting (estimated).
    pub fn backlog_bytes(&self) -> usize {
        lock(&self.shared.queue).bytes
    }

    /// Whether more than [`MAX_BACKLOG`] files or [`MAX_BACKLOG_BYTES`] wait: the caller
    /// should [`Self::sync`].
    pub fn backlogged(&self) -> bool {
        let q = lock(&self.shared.queue);
        q.files.len() > MAX_BACKLOG || q.bytes > MAX_BACKLOG_BYTES
    }

    /// Commits everything handed over so far now, and waits until it is durable.
    pub async fn sync(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.shared.queue).waiters.push(Box::new(move || {
            let _ = tx.send(());
        }));
        self.shared.wake.notify_one();
        let _done = rx.await;
    }

    /// [`Self::sync`], then removes the spare files (the stop: a quiet `status/` holds the
    /// state files only). Writing goes on if more is handed over.
    pub async fn close(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut q = lock(&self.shared.queue);
            q.release = true;
            q.waiters.push(Box::new(move || {
                let _ = tx.send(());
            }));
        }
        self.shared.wake.notify_one();
        let _done = rx.await;
    }

    /// [`Self::sync`] for callers outside the runtime (tests, shutdown): blocks.
    pub fn sync_blocking(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        lock(&self.shared.queue).waiters.push(Box::new(move || {
            let _ = tx.send(());
        }));
        self.shared.wake.notify_one();
        let _done = rx.recv();
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        lock(&self.shared.queue).stop = true;
        self.shared.wake.notify_one();
    }
}

/// The writer thread: waits for files, collects them up to the delay, writes a batch.
fn run(shared: &Shared) {
    // spare files in the directory now (`.spare.0.tmp` …)
    let mut spares = 0;
    loop {
        let mut q = lock(&shared.queue);
        while q.files.is_empty() && q.waiters.is_empty() && !q.stop {
            if spares == 0 {
                q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let (g, idle) = shared
                .wake
                .wait_timeout(q, SPARES_IDLE)
                .unwrap_or_else(|e| e.into_inner());
            q = g;
            if idle.timed_out() && q.files.is_empty() {
                drop(q);
                remove_spares(&shared.dir, spares);
                spares = 0;
                q = lock(&shared.queue);
            }
        }
        if q.stop && q.files.is_empty() {
            for w in q.waiters.drain(..) {
                w();
            }
            drop(q);
            remove_spares(&shared.dir, spares);
            return;
        }
        if q.waiters.is_empty() && !q.stop {
            let delay = shared.delay_ms.load(std::sync::atomic::Ordering::Relaxed);
            let (g, _) = shared
                .wake
                .wait_timeout_while(q, Duration::from_millis(delay), |q| {
                    q.waiters.is_empty() && !q.stop
                })
                .unwrap_or_else(|e| e.into_inner());
            q = g;
        }
        // lock order: `io` before `queue` (as in `forget`)
        drop(q);
        let io = lock(&shared.io);
        let mut q = lock(&shared.queue);
        let batch: Vec<(Box<str>, Pending)> = q
            .files
            .iter()
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        let waiters = std::mem::take(&mut q.waiters);
        let release = std::mem::take(&mut q.release);
        drop(q);
        let started = std::time::Instant::now();
        spares = spares.max(write_batch(&shared.dir, &batch));
        if !batch.is_empty() {
            shared.timer.observe(started.elapsed().as_secs_f64());
        }
        if release {
            remove_spares(&shared.dir, spares);
            spares = 0;
        }
        let mut q = lock(&shared.queue);
        for (sn, p) in &batch {
            if q.files
                .get(sn)
                .is_some_and(|c| c.generation == p.generation)
                && let Some(done) = q.files.remove(sn)
            {
                q.bytes = q.bytes.saturating_sub(done.cost);
            }
        }
        drop(q);
        drop(io);
        for w in waiters {
            w();
        }
    }
}

/// How the new content of one file reaches its name.
enum Via {
    /// A spare file of the pool, swapped with the old file (`RENAME_EXCHANGE`).
    Spare,
    /// A fresh temporary file, renamed over the old file.
    Fresh,
}

/// Spare file `i` of the pool.
fn spare_name(i: usize) -> String {
    format!(".spare.{i}.tmp")
}

/// Removes spare files `0..count`.
fn remove_spares(dir: &Path, count: usize) {
    for i in 0..count {
        let _ = std::fs::remove_file(dir.join(spare_name(i)));
    }
}

/// Writes every file to a temporary name, makes them durable (one round of syncs), puts
/// them in place and syncs the directory. In a batch of at least [`SPARES_FROM`] files, the
/// first [`MAX_SPARES`] are written into the spare files of the pool (see the module
/// comment), the others into fresh temporary files. Returns how many spare names it used.
fn write_batch(dir: &Path, batch: &[(Box<str>, Pending)]) -> usize {
    if batch.is_empty() {
        return 0;
    }
    let with_spares = batch.len() >= SPARES_FROM && spares_usable();
    let mut placed = Vec::with_capacity(batch.len());
    let mut bytes = String::new();
    for (i, (sn, p)) in batch.iter().enumerate() {
        // written here, once per batch: the polls in between only handed over their state
        bytes.clear();
        p.state.write_document(&mut bytes);
        let (tmp, via) = if with_spares && i < MAX_SPARES {
            (dir.join(spare_name(i)), Via::Spare)
        } else {
            (
                dir.join(format!(".{sn}.xml.{}.tmp", p.generation)),
                Via::Fresh,
            )
        };
        let written = match via {
            Via::Spare => write_spare(&tmp, bytes.as_bytes()),
            Via::Fresh => write_tmp(&tmp, bytes.as_bytes()),
        };
        match written {
            Ok(()) => placed.push((tmp, dir.join(format!("{sn}.xml")), via)),
            Err(e) => {
                tracing::error!("cannot write state of {sn}: {e}");
                let _ = std::fs::remove_file(&tmp);
            }
        }
    }
    if let Err(e) = sync_files(dir, &placed) {
        // not durable: better the old files than renamed ones that may be empty after a crash
        tracing::error!("cannot sync the state files in {}: {e}", dir.display());
        for (tmp, _, _) in &placed {
            let _ = std::fs::remove_file(tmp);
        }
        return 0;
    }
    for (tmp, path, via) in &placed {
        let done = match via {
            Via::Spare => exchange(tmp, path),
            Via::Fresh => std::fs::rename(tmp, path),
        };
        if let Err(e) = done {
            tracing::error!("cannot write {}: {e}", path.display());
            let _ = std::fs::remove_file(tmp);
        }
    }
    if let Err(e) = sync_dir(dir) {
        tracing::warn!("cannot sync {}: {e}", dir.display());
    }
    tracing::debug!(files = batch.len(), "state batch committed");
    if with_spares {
        batch.len().min(MAX_SPARES)
    } else {
        0
    }
}

fn write_tmp(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)?;
    f.write_all(bytes)
}

/// Overwrites spare file `tmp` with `bytes`, keeping its blocks; a spare that is not a
/// plain file of its own (a link to elsewhere) is replaced by a fresh file first.
fn write_spare(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // spares are used only where files can be swapped (Linux, see `spares_usable`)
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(tmp);
        let own = opened.and_then(|f| {
            let m = f.metadata()?;
            Ok((m.is_file() && m.nlink() == 1).then_some((f, m.len())))
        });
        if let Ok(Some((mut f, old_len))) = own {
            f.write_all(bytes)?;
            // the write made it as long as the new content unless the old one was longer
            let len = bytes.len() as u64;
            return if old_len > len {
                f.set_len(len)
            } else {
                Ok(())
            };
        }
        let _ = std::fs::remove_file(tmp);
    }
    write_tmp(tmp, bytes)
}

/// Whether spare files are swapped in (`RENAME_EXCHANGE`); cleared for good when the file
/// system refuses the swap.
static EXCHANGE_WORKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

fn spares_usable() -> bool {
    cfg!(target_os = "linux") && EXCHANGE_WORKS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Puts `tmp` in place of `path`: swapped with the old file, which becomes the spare; a
/// plain rename when there is no old file or the file system cannot swap.
fn exchange(tmp: &Path, path: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, tmp, CWD, path, RenameFlags::EXCHANGE) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
                tracing::info!(
                    "the file system of the state files cannot swap files ({e}): plain renames from now on"
                );
                EXCHANGE_WORKS.store(false, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => return Err(e.into()),
        }
    }
    std::fs::rename(tmp, path)
}

/// Makes the written temporary files durable: one `syncfs` of their file system on Linux,
/// each file on its own elsewhere.
fn sync_files(dir: &Path, files: &[(PathBuf, PathBuf, Via)]) -> std::io::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        let _ = files;
        let d = std::fs::File::open(dir)?;
        rustix::fs::syncfs(&d)?;
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        for (tmp, _, _) in files {
            std::fs::File::open(tmp)?.sync_all()?;
        }
        Ok(())
    }
}

/// Syncs a directory (its entries: the renames), where the platform can.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Removes temporary files a crash left in `dir` (`.NAME.tmp`, older than this call, so
/// a write under way is left alone); returns how many.
pub fn remove_leftovers(dir: &Path) -> usize {
    let started = std::time::SystemTime::now();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for entry in rd.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < started);
        if name.starts_with('.')
            && name.ends_with(".tmp")
            && old
            && std::fs::remove_file(entry.path()).is_ok()
        {
            n += 1;
        }
    }
    if n > 0 {
        tracing::info!("removed {n} leftover temporary files in {}", dir.display());
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_and_writes_on_sync() {
        let dir = tempfile::tempdir().expect("tmp");
        let w = Writer::start(
            dir.path().to_path_buf(),
            Duration::from_secs(3600),
            Default::default(),
        );
        for i in 0..5 {
            let mut el = DeviceState::default();
            el.root.set_attr("n", i.to_string());
            w.submit("a", Arc::new(el));
        }
        assert!(w.pending("a").is_some());
        w.sync_blocking();
        assert!(w.pending("a").is_none());
        let text = std::fs::read_to_string(dir.path().join("a.xml")).expect("written");
        assert_eq!(text, "<?xml version=\"1.0\"?>\n<state n=\"4\"/>\n");
        let tmp = dir.path().join(".a.xml.7.tmp");
        std::fs::write(&tmp, "x").expect("tmp");
        let f = std::fs::File::options()
            .write(true)
            .open(&tmp)
            .expect("open");
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
            .expect("mtime");
        assert_eq!(remove_leftovers(dir.path()), 1);
    }

    fn state(n: &str) -> Arc<DeviceState> {
        let mut el = DeviceState::default();
        el.root.set_attr("n", n);
        Arc::new(el)
    }

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap_or_default()
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn spares(d: &Path) -> usize {
        names(d).iter().filter(|n| n.starts_with(".spare.")).count()
    }

    /// One batch: `a` and enough other devices for the batch to use spares.
    fn batch(w: &Writer, n: &str) {
        w.submit("a", state(n));
        for i in 1..SPARES_FROM {
            w.submit(&format!("d{i}"), state(n));
        }
        w.sync_blocking();
    }

    #[test]
    fn spare_files_are_swapped_in_and_never_write_through_links() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let w = Writer::start(
            d.to_path_buf(),
            Duration::from_secs(3600),
            Default::default(),
        );
        // a small batch: no spares
        w.submit("a", state("0"));
        w.sync_blocking();
        assert_eq!(names(d), ["a.xml"]);
        // new files are renamed in (no spare left), `a` is swapped (its old file is a spare)
        batch(&w, "1");
        assert_eq!(spares(d), 1);
        assert_eq!(names(d).len(), SPARES_FROM + 1);
        // a hard link to a state file (made by somebody else) keeps its content
        std::fs::hard_link(d.join("a.xml"), d.join("a-copy")).expect("link");
        batch(&w, "2");
        assert!(read(d, "a.xml").contains(r#"n="2""#));
        assert!(read(d, "d5.xml").contains(r#"n="2""#));
        assert_eq!(spares(d), SPARES_FROM, "the old files are the spares now");
        // the next batch reuses them; the old content of `a` (linked) is not overwritten
        batch(&w, "3");
        assert!(
            read(d, "a-copy").contains(r#"n="1""#),
            "{}",
            read(d, "a-copy")
        );
        assert!(read(d, "a.xml").contains(r#"n="3""#));
        assert!(read(d, "d7.xml").contains(r#"n="3""#));
        assert_eq!(spares(d), SPARES_FROM);
        // a spare replaced by a link to another file is not followed
        let victim = d.join("victim");
        std::fs::write(&victim, "keep").expect("victim");
        for s in names(d).iter().filter(|n| n.starts_with(".spare.")) {
            std::fs::remove_file(d.join(s)).expect("rm spare");
            #[cfg(unix)]
            std::os::unix::fs::symlink(&victim, d.join(s)).expect("symlink");
        }
        batch(&w, "4");
        assert_eq!(read(d, "victim"), "keep");
        assert!(read(d, "a.xml").contains(r#"n="4""#));
        assert!(read(d, "d9.xml").contains(r#"n="4""#));
        // idle: the spares go
        let until = std::time::Instant::now() + SPARES_IDLE * 3;
        while spares(d) > 0 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(spares(d), 0, "{:?}", names(d));
        assert_eq!(names(d).len(), SPARES_FROM + 2, "states, a-copy and victim");
    }

    #[tokio::test]
    async fn close_removes_the_spares_at_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let w = Writer::start(
            d.to_path_buf(),
            Duration::from_secs(3600),
            Default::default(),
        );
        batch(&w, "1");
        batch(&w, "2");
        assert_eq!(spares(d), SPARES_FROM);
        w.submit("a", state("3"));
        w.close().await;
        assert_eq!(spares(d), 0, "{:?}", names(d));
        assert!(read(d, "a.xml").contains(r#"n="3""#));
        // still writing afterwards
        batch(&w, "4");
        assert!(read(d, "d3.xml").contains(r#"n="4""#));
    }

    #[test]
    fn pending_bytes_are_bounded_too() {
        let dir = tempfile::tempdir().expect("tmp");
        let w = Writer::start(
            dir.path().to_path_buf(),
            Duration::from_secs(3600),
            Default::default(),
        );
        let big = Arc::new(DeviceState::default());
        w.submit_costed("a", big.clone(), MAX_BACKLOG_BYTES / 2);
        w.submit_costed("a", big.clone(), MAX_BACKLOG_BYTES / 2);
        assert!(!w.backlogged(), "a replaced file is not counted twice");
        w.submit_costed("b", big.clone(), MAX_BACKLOG_BYTES / 2 + 1);
        assert!(w.backlogged(), "two files over the byte bound");
        w.sync_blocking();
        assert_eq!(w.backlog_bytes(), 0);
        assert!(!w.backlogged());
    }

    #[test]
    fn a_spare_takes_the_length_of_its_new_content() {
        let dir = tempfile::tempdir().expect("tmp");
        let spare = dir.path().join(spare_name(0));
        write_spare(&spare, b"a longer old content").expect("write");
        write_spare(&spare, b"short").expect("write");
        assert_eq!(std::fs::read(&spare).expect("read"), b"short");
        write_spare(&spare, b"longer again").expect("write");
        assert_eq!(std::fs::read(&spare).expect("read"), b"longer again");
    }

    #[test]
    fn a_backlog_above_the_bound_asks_polls_to_wait() {
        let dir = tempfile::tempdir().expect("tmp");
        let w = Writer::start(
            dir.path().to_path_buf(),
            Duration::from_secs(3600),
            Default::default(),
        );
        for i in 0..=MAX_BACKLOG {
            let el = Arc::new(DeviceState::default());
            w.submit(&format!("d{i}"), el);
            assert_eq!(w.backlogged(), i >= MAX_BACKLOG, "after {} files", i + 1);
        }
        w.sync_blocking();
        assert!(!w.backlogged());
        let files = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(
            files,
            MAX_BACKLOG + 1,
            "every file written, no temporary file left"
        );
    }
}
