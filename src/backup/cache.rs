//! The backup lists the admin pages show, per hardware id, read again only when the device's
//! backup directory changed ([`BackupCache`]).

use super::Stored;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

struct CachedList {
    mtime: SystemTime,
    list: Arc<Vec<Stored>>,
}

/// Backup lists per hardware id, read again when the directory's modification time changes.
#[derive(Default)]
pub struct BackupCache {
    map: Mutex<HashMap<String, CachedList>>,
}

impl BackupCache {
    /// The backups of `hwid` below `dir`, newest first.
    pub fn list(&self, root: &Path, dir: &str, hwid: &str) -> Arc<Vec<Stored>> {
        if hwid.is_empty() || crate::request::check_name("hwid", hwid.as_bytes()).is_err() {
            return Arc::new(Vec::new());
        }
        let Ok(meta) = std::fs::metadata(root.join(dir).join(hwid)) else {
            return Arc::new(Vec::new());
        };
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if let Some(c) = self.map.lock().unwrap_or_else(|e| e.into_inner()).get(hwid)
            && c.mtime == mtime
        {
            return c.list.clone();
        }
        let mut list = super::list(root, dir, hwid);
        list.reverse();
        let list = Arc::new(list);
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert(
            hwid.to_string(),
            CachedList {
                mtime,
                list: list.clone(),
            },
        );
        list
    }
}
