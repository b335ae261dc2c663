//! Evidence snapshots on disk: `<dir>/<camera>/<uuid v7>.jpg`, written atomically (temporary
//! file, sync, rename), served at a stable URL, pruned by age and by total size (oldest first).
//!
//! One file per keyframe: the name is derived from the moment the keyframe was captured and a
//! digest of the picture, so the alarms that use the same cached keyframe share one file. The
//! size limit holds on write too: a write that takes the directory past it prunes at once, down
//! to nine tenths of the limit — whoever can push alarms cannot fill the disk between two timed
//! prunes.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    /// Bytes in the directory as far as this process knows (set by each prune, grown by each
    /// write).
    total: Arc<AtomicU64>,
}

/// The file name of a keyframe captured at `captured_ms` (unix ms) with these bytes: a UUIDv7
/// whose time is the capture and whose random part is the picture's digest.
pub fn keyframe_name(captured_ms: i64, jpeg: &[u8]) -> String {
    let digest = Sha256::digest(jpeg);
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&(captured_ms.max(0) as u64).to_be_bytes()[2..]);
    b[6..].copy_from_slice(&digest[..10]);
    b[6] = 0x70 | (b[6] & 0x0f); // version 7
    b[8] = 0x80 | (b[8] & 0x3f); // RFC 4122 variant
    format!("{}.jpg", Uuid::from_bytes(b))
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
        Self {
            dir,
            retention,
            total: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Saves the keyframe `camera` captured at `captured_ms` (a registry id: checked by the
    /// registry to be a plain name); returns its file name — the existing file's when this
    /// keyframe was saved before.
    pub fn save(&self, camera: &str, jpeg: &[u8], captured_ms: i64) -> std::io::Result<String> {
        let dir = self.dir.join(camera);
        std::fs::create_dir_all(&dir)?;
        let name = keyframe_name(captured_ms, jpeg);
        let path = dir.join(&name);
        if path.exists() {
            return Ok(name);
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(jpeg).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            // a full disk leaves no half-written file behind
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let total = self.total.fetch_add(jpeg.len() as u64, Ordering::Relaxed) + jpeg.len() as u64;
        if total > self.retention.max_bytes {
            self.prune_to(SystemTime::now(), self.retention.max_bytes / 10 * 9)?;
        }
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
        self.prune_to(now, self.retention.max_bytes)
    }

    /// Deletes files past their age, then the oldest while all take more than `max_bytes`.
    fn prune_to(&self, now: SystemTime, max_bytes: u64) -> std::io::Result<Pruned> {
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
            if too_old || total > max_bytes {
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
        self.total.store(out.kept_bytes, Ordering::Relaxed);
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
        let a = store.save("cam-1", &[1u8; 100], 1_000).unwrap();
        let b = store.save("cam-1", &[2u8; 100], 2_000).unwrap();
        assert_eq!(store.read("cam-1", &a).unwrap().unwrap(), vec![1u8; 100]);
        assert_eq!(
            store.read("cam-2", &a).unwrap(),
            None,
            "another camera's name"
        );
        assert_eq!(store.read("cam-1", "../cam-2/x.jpg").unwrap(), None);
        assert_eq!(store.read("..", &a).unwrap(), None);

        // a third write takes 300 bytes past 250: pruned on write, down to 225 (the oldest goes)
        let c = store.save("cam-2", &[3u8; 100], 3_000).unwrap();
        assert_eq!(store.read("cam-1", &a).unwrap(), None);
        assert!(store.read("cam-1", &b).unwrap().is_some());
        let now = SystemTime::now();
        let p = store.prune(now).unwrap();
        assert_eq!((p.files, p.kept_files, p.kept_bytes), (0, 2, 200));
        // two hours later everything is too old
        let p = store.prune(now + Duration::from_secs(7200)).unwrap();
        assert_eq!((p.files, p.kept_files), (2, 0));
        assert_eq!(store.read("cam-2", &c).unwrap(), None);
    }

    #[test]
    fn alarms_sharing_a_keyframe_share_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = EvidenceStore::new(dir.path().to_path_buf(), Retention::default());
        let a = store.save("cam-1", b"keyframe", 1_800_000_000_000).unwrap();
        let b = store.save("cam-1", b"keyframe", 1_800_000_000_000).unwrap();
        assert_eq!(a, b, "one file per keyframe");
        assert_ne!(
            a,
            store.save("cam-1", b"another", 1_800_000_000_000).unwrap()
        );
        assert!(is_evidence_name(&a), "{a}");
        assert_eq!(
            std::fs::read_dir(dir.path().join("cam-1")).unwrap().count(),
            2
        );
    }
}
