//! Evidence snapshots on disk: `<dir>/<camera>/<uuid v7>.jpg`, written atomically (temporary
//! file, sync, rename), served at a stable URL, pruned by age and by total size (oldest first).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// Retention of evidence files.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Files older than this are deleted.
    pub max_age: Duration,
    /// The oldest files are deleted while all of them take more than this.
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30 * 86_400),
            max_bytes: 1 << 30,
        }
    }
}

/// The evidence directory.
#[derive(Debug, Clone)]
pub struct EvidenceStore {
    dir: PathBuf,
    retention: Retention,
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Files deleted.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Files kept.
    pub kept_files: usize,
    /// Their bytes.
    pub kept_bytes: u64,
}

/// Whether `name` is a file name this store writes (`<uuid>.jpg`).
fn is_evidence_name(name: &str) -> bool {
    name.strip_suffix(".jpg")
        .is_some_and(|stem| Uuid::try_parse(stem).is_ok() && stem.len() == 36)
}

impl EvidenceStore {
    /// A store in `dir` (created on first write).
    pub fn new(dir: PathBuf, retention: Retention) -> Self {
        Self { dir, retention }
    }

    /// Saves a JPEG from `camera` (a registry id: checked by the registry to be a plain
    /// name); returns its file name.
    pub fn save(&self, camera: &str, jpeg: &[u8]) -> std::io::Result<String> {
        let dir = self.dir.join(camera);
        std::fs::create_dir_all(&dir)?;
        let name = format!("{}.jpg", Uuid::now_v7());
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(jpeg)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(&name))?;
        Ok(name)
    }

    /// Reads a saved JPEG; `None` when there is no such file (or the name is not one of ours).
    pub fn read(&self, camera: &str, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        if !is_evidence_name(name) || camera.contains(['/', '\\']) || camera.starts_with('.') {
            return Ok(None);
        }
        match std::fs::read(self.dir.join(camera).join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes what the retention no longer allows.
    pub fn prune(&self, now: SystemTime) -> std::io::Result<Pruned> {
        let mut files: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        let cameras = match std::fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pruned::default()),
            Err(e) => return Err(e),
        };
        for camera in cameras.flatten() {
            let Ok(entries) = std::fs::read_dir(camera.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                if !name.to_str().is_some_and(is_evidence_name) {
                    continue;
                }
                let Ok(meta) = e.metadata() else { continue };
                let at = meta.modified().unwrap_or(now);
                files.push((at, meta.len(), e.path()));
            }
        }
        files.sort();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        let mut out = Pruned::default();
        for (at, len, path) in &files {
            let too_old = now.duration_since(*at).unwrap_or_default() > self.retention.max_age;
            if too_old || total > self.retention.max_bytes {
                if remove(path)? {
                    out.files += 1;
                    out.bytes += len;
                }
                total -= len;
            } else {
                out.kept_files += 1;
                out.kept_bytes += len;
            }
        }
        Ok(out)
    }
}

fn remove(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_reads_and_prunes_by_age_then_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = EvidenceStore::new(
            dir.path().join("evidence"),
            Retention {
                max_age: Duration::from_secs(3600),
                max_bytes: 250,
            },
        );
        assert_eq!(store.prune(SystemTime::now()).unwrap(), Pruned::default());
        let a = store.save("cam-1", &[1u8; 100]).unwrap();
        let b = store.save("cam-1", &[2u8; 100]).unwrap();
        let c = store.save("cam-2", &[3u8; 100]).unwrap();
        assert_eq!(store.read("cam-1", &a).unwrap().unwrap(), vec![1u8; 100]);
        assert_eq!(
            store.read("cam-2", &a).unwrap(),
            None,
            "another camera's name"
        );
        assert_eq!(store.read("cam-1", "../cam-2/x.jpg").unwrap(), None);
        assert_eq!(store.read("..", &a).unwrap(), None);

        // 300 bytes against 250: the oldest goes
        let now = SystemTime::now();
        let p = store.prune(now).unwrap();
        assert_eq!((p.files, p.kept_files, p.kept_bytes), (1, 2, 200));
        assert_eq!(store.read("cam-1", &a).unwrap(), None);
        assert!(store.read("cam-1", &b).unwrap().is_some());
        // two hours later everything is too old
        let p = store.prune(now + Duration::from_secs(7200)).unwrap();
        assert_eq!((p.files, p.kept_files), (2, 0));
        assert_eq!(store.read("cam-2", &c).unwrap(), None);
    }
}
