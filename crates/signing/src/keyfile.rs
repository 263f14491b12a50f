//! Private key files: written whole or not at all, never overwritten by a second first start,
//! and checked for loose permissions.
//!
//! - [`write_new`]: a first start writes the key to a temporary file (mode 0600) and hard-links
//!   it into place, which fails with `AlreadyExists` when another process got there first. An
//!   admin API and a sender started together therefore never read half a file, and agree on
//!   one key.
//! - [`replace`]: a rotation writes the new key to a temporary file and renames it over the old
//!   one, so the path always holds a complete key.
//! - [`KEY_ID_LABEL`]: a key file may name its key id in a line before the PEM block (RFC 7468
//!   explanatory text, which OpenSSL ignores). A rotation records the new key's id there when
//!   it is not the fingerprint default, so that senders restarted with a fixed
//!   `HOOKLINE_SIGNING_KEY_ID` sign with the rotated key's own id.
//! - [`warn_if_readable_by_others`]: a key file readable by its group or by everyone gets one
//!   warning per process and path.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The label of the key id line: `Hookline-Key-Id: <id>`.
pub const KEY_ID_LABEL: &str = "Hookline-Key-Id:";

fn temp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        crate::cavage::new_nonce()
    ));
    PathBuf::from(tmp)
}

/// Writes `text` to a new temporary file beside `path`, mode 0600, synced.
fn write_temp(path: &Path, text: &str) -> std::io::Result<PathBuf> {
    let tmp = temp_path(path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Puts `text` at `path` all at once, unless a file is there already (`AlreadyExists`).
pub fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = write_temp(path, text)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked
}

/// Replaces whatever is at `path` by `text` all at once.
pub fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = write_temp(path, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The key id a key file records before its PEM block, if any.
pub fn recorded_key_id(text: &str) -> Option<&str> {
    let head = &text[..text.find("-----BEGIN ").unwrap_or(text.len())];
    head.lines()
        .find_map(|l| l.trim().strip_prefix(KEY_ID_LABEL))
        .map(str::trim)
        .filter(|id| !id.is_empty())
}

/// The id to sign with: `configured` (`HOOKLINE_SIGNING_KEY_ID`) is a base; a key id the file
/// records wins when there is no base or when it was derived from it (`<base>-<suffix>`, as a
/// rotation writes). `None`: the fingerprint default.
pub fn effective_key_id(configured: Option<&str>, recorded: Option<&str>) -> Option<String> {
    let configured = configured.map(str::trim).filter(|k| !k.is_empty());
    match (configured, recorded) {
        (None, r) => r.map(str::to_owned),
        (Some(base), Some(r))
            if r == base || r.strip_prefix(base).is_some_and(|s| s.starts_with('-')) =>
        {
            Some(r.to_owned())
        }
        (Some(base), _) => Some(base.to_owned()),
    }
}

/// Why a key file's permissions are too loose, or `None` when only its owner can read it.
pub fn loose_permissions(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Some(format!(
                "signing key {} has mode {mode:03o}: its group or everyone can read it; \
                 run `chmod 600 {}`",
                path.display(),
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    None
}

static WARNED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Logs [`loose_permissions`] once per process and path; returns whether it logged now.
pub fn warn_if_readable_by_others(path: &Path) -> bool {
    let Some(message) = loose_permissions(path) else {
        return false;
    };
    let first = WARNED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashSet::new)
        .insert(path.to_path_buf());
    if first {
        tracing::warn!("{message}");
    }
    first
}

/// The entries of the keyring at `path` (none when there is no file). `rejected` builds the
/// error for a file that is not a JSON list of `T` (RSA and Ed25519 keyrings name their key
/// kind in it).
pub fn read_keyring<T: serde::de::DeserializeOwned>(
    path: &Path,
    rejected: impl FnOnce(String, String) -> crate::KeyError,
) -> Result<Vec<T>, crate::KeyError> {
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| rejected(shown, format!("keyring is not valid JSON: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(crate::KeyError::Read {
            path: shown,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("hookline-keyfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn new_files_appear_whole_and_are_never_overwritten_and_replacements_are_whole() {
        let d = dir("write");
        let p = d.join("k.pem");
        write_new(&p, "first").unwrap();
        let e = write_new(&p, "second").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "first");
        replace(&p, "third").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "third");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_recorded_key_id_wins_only_over_its_own_base() {
        let text = "Hookline-Key-Id: k-1a2b3c\n-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n";
        assert_eq!(recorded_key_id(text), Some("k-1a2b3c"));
        assert_eq!(
            recorded_key_id("-----BEGIN X-----\nHookline-Key-Id: no\n"),
            None
        );
        let r = Some("k-1a2b3c");
        assert_eq!(effective_key_id(Some("k"), r).as_deref(), Some("k-1a2b3c"));
        assert_eq!(effective_key_id(None, r).as_deref(), Some("k-1a2b3c"));
        assert_eq!(effective_key_id(Some("other"), r).as_deref(), Some("other"));
        assert_eq!(
            effective_key_id(Some("k-1"), r).as_deref(),
            Some("k-1"),
            "not k-1's"
        );
        assert_eq!(effective_key_id(Some("k"), None).as_deref(), Some("k"));
        assert_eq!(effective_key_id(None, None), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_readable_by_others_is_warned_about_once() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("mode");
        let p = d.join("k.pem");
        write_new(&p, "key").unwrap();
        assert_eq!(loose_permissions(&p), None);
        assert!(!warn_if_readable_by_others(&p));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let message = loose_permissions(&p).unwrap();
        assert!(
            message.contains("mode 644") && message.contains("chmod 600"),
            "{message}"
        );
        assert!(warn_if_readable_by_others(&p), "warned the first time");
        assert!(!warn_if_readable_by_others(&p), "and not again");
        let _ = std::fs::remove_dir_all(&d);
    }
}
