//! The subjects and key fingerprints of waiting CSRs ([`CsrSummary`]) the admin pages show,
//! read once per version of a CSR file: a summary is kept by path and read again only when
//! the file's modification time or size changed. At most [`MAX_ENTRIES`] files are kept.

use super::CsrSummary;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

/// Most CSR files whose summary is kept; beyond, one is forgotten for each new one.
pub const MAX_ENTRIES: usize = 4096;

/// Largest CSR file read (bytes).
pub const MAX_CSR_BYTES: u64 = 64 * 1024;

struct Cached {
    mtime: SystemTime,
    len: u64,
    summary: Option<CsrSummary>,
}

/// CSR summaries by file (see the module documentation).
#[derive(Default)]
pub struct CsrCache {
    map: Mutex<HashMap<PathBuf, Cached>>,
    reads: AtomicUsize,
}

impl CsrCache {
    /// The summary of the CSR file `path`; `None` when it is missing, too large or no CSR.
    pub fn summary(&self, path: &Path) -> Option<CsrSummary> {
        let meta = std::fs::metadata(path).ok()?;
        let (mtime, len) = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        if let Some(c) = self.lock().get(path)
            && c.mtime == mtime
            && c.len == len
        {
            return c.summary.clone();
        }
        let summary = if len <= MAX_CSR_BYTES {
            self.reads.fetch_add(1, Ordering::Relaxed);
            std::fs::read(path)
                .ok()
                .and_then(|b| super::csr_summary(&b))
        } else {
            None
        };
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES
            && !map.contains_key(path)
            && let Some(old) = map.keys().next().cloned()
        {
            map.remove(&old);
        }
        map.insert(
            path.to_path_buf(),
            Cached {
                mtime,
                len,
                summary: summary.clone(),
            },
        );
        summary
    }

    /// How many files are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times a file was read (not answered from the cache).
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Cached>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(cn: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, cn.to_string());
        p.serialize_request(&key).expect("csr").der().to_vec()
    }

    #[test]
    fn a_csr_is_read_again_only_when_its_file_changed() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a-request.p10.der");
        let cache = CsrCache::default();
        assert_eq!(cache.summary(&path), None, "no file");
        std::fs::write(&path, csr("first")).expect("write");
        let first = cache.summary(&path).expect("summary");
        assert!(first.subject.contains("CN=first"), "{first:?}");
        assert_eq!(cache.summary(&path), Some(first.clone()));
        assert_eq!(cache.reads(), 1, "the second view reads no file");
        std::fs::write(&path, b"not a request").expect("write");
        assert_eq!(cache.summary(&path), None, "size changed: read again");
        assert_eq!(cache.reads(), 2);
        std::fs::write(&path, vec![0u8; MAX_CSR_BYTES as usize + 1]).expect("write");
        assert_eq!(cache.summary(&path), None, "too large");
        assert_eq!(cache.reads(), 2, "a file too large is not read");
    }

    #[test]
    fn the_cache_is_bounded() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = CsrCache::default();
        for i in 0..MAX_ENTRIES + 20 {
            let path = dir.path().join(format!("{i}.der"));
            std::fs::write(&path, b"x").expect("write");
            assert_eq!(cache.summary(&path), None);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
    }
}
