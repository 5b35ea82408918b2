//! The consumer's static group membership id (`group.instance.id`, KIP-345).
//!
//! A member with a static id that restarts within the session timeout gets its partitions
//! back at once, without a rebalance; a dynamic member that crashed holds its partitions
//! until the session times out, and only then do they move. The id must be unique in the
//! group among live processes (a second process with the same id fences the first), and
//! stable across restarts of the same process.
//!
//! `kafka.instance_id = "auto"` (the default) derives it as `<host>-<slot>`: the slot is the
//! lowest number whose lock file (`<temp dir>/stepstream-slots-<uid>/<group>.<slot>.lock`) this
//! process can lock. The kernel drops the lock when the process dies, however it dies, so a
//! restarted process takes the slot (and the id) of the one that crashed, while processes
//! running side by side on one host get different slots. In a container whose host name is
//! the pod's (a StatefulSet), every pod is slot 0 with its own host name.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// How many slots are tried on one host before giving up on a static id.
const MAX_SLOTS: u32 = 256;

/// A static membership id, and the lock that keeps it ours while we run.
#[derive(Debug)]
pub struct InstanceId {
    /// The `group.instance.id` to use.
    pub id: String,
    _lock: Option<File>,
}

/// Why no static membership id could be derived.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// The slot folder cannot be created.
    #[error("cannot create the slot folder {dir}: {source}")]
    Dir {
        /// The folder.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Every slot is taken (or no lock file could be opened).
    #[error("no free slot among {MAX_SLOTS} in {0}")]
    NoSlot(PathBuf),
}

/// The membership id for `setting` (`kafka.instance_id`) in `group`: `None` for dynamic
/// membership (`"none"` or empty), the setting itself when explicit, or a derived one.
pub fn resolve(setting: &str, group: &str) -> Result<Option<InstanceId>, InstanceError> {
    match setting.trim() {
        "" | "none" => Ok(None),
        "auto" => {
            // SAFETY: getuid(2) has no preconditions and cannot fail.
            let uid = unsafe { libc::getuid() };
            let dir = std::env::temp_dir().join(format!("stepstream-slots-{uid}"));
            derive(&dir, group, &hostname()).map(Some)
        }
        id => Ok(Some(InstanceId {
            id: id.to_string(),
            _lock: None,
        })),
    }
}

/// Claims the lowest free slot of `group` in `dir`: `<host>-<slot>`.
fn derive(dir: &std::path::Path, group: &str, host: &str) -> Result<InstanceId, InstanceError> {
    std::fs::create_dir_all(dir).map_err(|source| InstanceError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let group_file: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    for slot in 0..MAX_SLOTS {
        let path = dir.join(format!("{group_file}.{slot}.lock"));
        let Ok(file) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        else {
            continue;
        };
        // SAFETY: flock(2) on a descriptor we own; non-blocking, so it cannot hang.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(InstanceId {
                id: format!("{host}-{slot}"),
                _lock: Some(file),
            });
        }
    }
    Err(InstanceError::NoSlot(dir.to_path_buf()))
}

/// The host name, or `localhost` when it cannot be read.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let name = name.trim();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "stepstream-slot-test-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn live_processes_get_different_slots_and_a_freed_slot_is_reused() {
        let dir = temp_dir();
        let a = derive(&dir, "g", "host").unwrap();
        let b = derive(&dir, "g", "host").unwrap();
        assert_eq!(a.id, "host-0");
        assert_eq!(b.id, "host-1");
        // Another group has its own slots.
        assert_eq!(derive(&dir, "other", "host").unwrap().id, "host-0");
        // The holder of slot 0 dies: its successor takes slot 0, the id of the one it replaces.
        drop(a);
        assert_eq!(derive(&dir, "g", "host").unwrap().id, "host-0");
        drop(b);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn explicit_and_disabled_settings() {
        assert!(resolve("none", "g").unwrap().is_none());
        assert!(resolve("", "g").unwrap().is_none());
        assert_eq!(resolve("worker-7", "g").unwrap().unwrap().id, "worker-7");
    }

    #[test]
    fn group_names_cannot_escape_the_slot_folder() {
        let dir = temp_dir();
        let id = derive(&dir, "../../etc/passwd", "h").unwrap();
        assert_eq!(id.id, "h-0");
        assert!(dir.join("______etc_passwd.0.lock").exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
