//! Pairing: the key two devices share before they may sync, and the learners it names.
//!
//! A [`PairingKey`] is made on one device (`headway peer pair`), carried to the other, and
//! held by both. It holds a random key id (sent in clear, so a device holding several keys
//! picks the right one), a 32-byte secret from the OS's random source, and the learners it
//! covers. The live channel ([`PeerChannel`]) proves both ends hold the same key and encrypts
//! what they say; a sealed peer file ([`Store::peer_export_sealed`]) opens only with it. A
//! connection or a file touches only the learners its key names.
//!
//! [`Store::peer_export_sealed`]: crate::Store::peer_export_sealed

mod channel;
mod sealed;

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{random_bytes, UserId};

pub use channel::PeerChannel;

/// What a key file says it is, so another JSON file is never read as a key.
const FORMAT: &str = "headway-pairing-key";
/// The key file format this build writes and reads.
const FORMAT_VERSION: u32 = 1;
/// The largest key file read: a key naming many learners is still far smaller.
const MAX_KEY_FILE_LEN: u64 = 1024 * 1024;
/// The most learners one key may name.
///
/// ```
/// use headway::{PairingKey, UserId, MAX_PAIRED_LEARNERS};
/// let many = (0..=MAX_PAIRED_LEARNERS).map(|i| UserId::new(format!("u{i}")).unwrap());
/// assert!(PairingKey::generate(many).is_err());
/// ```
pub const MAX_PAIRED_LEARNERS: usize = 10_000;

/// A pairing key: a key id, a secret shared by two devices, and the learners it covers.
/// Its `Debug` shows the id and the learners, never the secret.
///
/// ```
/// # fn main() -> headway::Result<()> {
/// use headway::{PairingKey, UserId};
/// let key = PairingKey::generate([UserId::new("asha")?])?;
/// assert!(key.covers(&UserId::new("asha")?));
/// assert!(!key.covers(&UserId::new("bob")?));
/// let again = PairingKey::from_json(&key.to_json())?;
/// assert_eq!(again.id(), key.id());
/// assert!(!format!("{key:?}").contains("secret")); // Debug never shows the secret
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PairingKey {
    id: [u8; 16],
    secret: [u8; 32],
    learners: Vec<UserId>,
}

/// The key file's JSON.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: String,
    version: u32,
    id: String,
    secret: String,
    learners: Vec<UserId>,
}

fn refuse(reason: impl Into<String>) -> Error {
    Error::PairingKey {
        reason: reason.into(),
    }
}

impl PairingKey {
    /// A new key for `learners` (at least one; duplicates count once), its id and secret from
    /// the OS's random source.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{PairingKey, UserId};
    /// let key = PairingKey::generate([UserId::new("bob")?, UserId::new("asha")?])?;
    /// assert_eq!(key.learners(), [UserId::new("asha")?, UserId::new("bob")?]);
    /// assert_ne!(key.id(), PairingKey::generate([UserId::new("bob")?])?.id());
    /// assert!(PairingKey::generate([]).is_err());
    /// # Ok(()) }
    /// ```
    pub fn generate(learners: impl IntoIterator<Item = UserId>) -> Result<PairingKey> {
        let learners = checked_learners(learners.into_iter().collect())?;
        // The message stays "pairing key refused: the OS's random source failed: ...".
        let failed = |e: Error| refuse(e.to_string());
        let id = random_bytes::<16>().map_err(failed)?;
        let secret = random_bytes::<32>().map_err(failed)?;
        Ok(PairingKey {
            id,
            secret,
            learners,
        })
    }

    /// The key id (32 hex digits): not secret, it travels in clear.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// let key = headway::PairingKey::generate([headway::UserId::new("asha")?])?;
    /// assert_eq!(key.id().len(), 32);
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> String {
        hex(&self.id)
    }

    /// The learners the key covers, sorted.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{PairingKey, UserId};
    /// let key = PairingKey::generate([UserId::new("asha")?])?;
    /// assert_eq!(key.learners(), [UserId::new("asha")?]);
    /// # Ok(()) }
    /// ```
    pub fn learners(&self) -> &[UserId] {
        &self.learners
    }

    /// True when the key names `user`.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{PairingKey, UserId};
    /// let key = PairingKey::generate([UserId::new("asha")?])?;
    /// assert!(key.covers(&UserId::new("asha")?) && !key.covers(&UserId::new("bob")?));
    /// # Ok(()) }
    /// ```
    pub fn covers(&self, user: &UserId) -> bool {
        self.learners.binary_search(user).is_ok()
    }

    /// The key file's text (JSON with a format and a version). It holds the secret: keep it
    /// like a password.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// let key = headway::PairingKey::generate([headway::UserId::new("asha")?])?;
    /// assert!(key.to_json().contains("\"format\": \"headway-pairing-key\""));
    /// # Ok(()) }
    /// ```
    pub fn to_json(&self) -> String {
        let file = KeyFile {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            id: hex(&self.id),
            secret: hex(&self.secret),
            learners: self.learners.clone(),
        };
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads a key file's text, checking everything: the format and its version, the id's
    /// and the secret's lengths, every learner id.
    ///
    /// ```
    /// use headway::PairingKey;
    /// assert!(PairingKey::from_json("{}").is_err());
    /// let text = r#"{"format": "headway-pairing-key", "version": 1, "id": "00",
    ///                "secret": "00", "learners": ["asha"]}"#;
    /// assert!(PairingKey::from_json(text).unwrap_err().to_string().contains("id"));
    /// ```
    pub fn from_json(text: &str) -> Result<PairingKey> {
        let file: KeyFile = serde_json::from_str(text)
            .map_err(|e| refuse(format!("not a headway pairing key: {e}")))?;
        if file.format != FORMAT {
            return Err(refuse(format!(
                "not a headway pairing key (format {:?})",
                crate::error::shorten(&file.format)
            )));
        }
        if file.version != FORMAT_VERSION {
            return Err(refuse(format!(
                "key file version {} is not one this build reads ({FORMAT_VERSION})",
                file.version
            )));
        }
        let id = unhex(&file.id).ok_or_else(|| refuse("the key id is not 32 hex digits"))?;
        let secret: [u8; 32] =
            unhex(&file.secret).ok_or_else(|| refuse("the secret is not 64 hex digits"))?;
        if secret.iter().all(|b| *b == 0) {
            // No random source writes this: the file was edited, and the secret is known.
            return Err(refuse(
                "the secret is all zeros: make a new key with `headway peer pair`",
            ));
        }
        Ok(PairingKey {
            id,
            secret,
            learners: checked_learners(file.learners)?,
        })
    }

    /// Writes the key to a new file readable by its owner only (mode 0600 on Unix). An
    /// existing file is never overwritten.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{PairingKey, UserId};
    /// let path = std::env::temp_dir().join(format!("doc-key-{}.json", std::process::id()));
    /// let key = PairingKey::generate([UserId::new("asha")?])?;
    /// key.write_new(&path)?;
    /// assert!(key.write_new(&path).is_err()); // never overwritten
    /// assert_eq!(PairingKey::read(&path)?.id(), key.id());
    /// # std::fs::remove_file(&path).ok();
    /// # Ok(()) }
    /// ```
    pub fn write_new(&self, path: &Path) -> Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| {
            refuse(match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    format!("{} exists; a key file is never overwritten", path.display())
                }
                _ => format!("cannot create {}: {e}", path.display()),
            })
        })?;
        file.write_all(self.to_json().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| refuse(format!("cannot write {}: {e}", path.display())))
    }

    /// Reads a key file. Like an SSH key, a file others may read (any group or world
    /// permission on Unix) is refused: its secret may no longer be one.
    ///
    /// ```
    /// let missing = headway::PairingKey::read(std::path::Path::new("/nonexistent/key"));
    /// assert!(missing.unwrap_err().to_string().contains("/nonexistent/key"));
    /// ```
    pub fn read(path: &Path) -> Result<PairingKey> {
        // A FIFO or a device would block the open or the read, or never end: asked first.
        if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) && path.exists() {
            return Err(refuse(format!("{} is not a regular file", path.display())));
        }
        let file = std::fs::File::open(path)
            .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
        let metadata = file
            .metadata()
            .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
        if !metadata.is_file() {
            return Err(refuse(format!("{} is not a regular file", path.display())));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(refuse(format!(
                    "{} may be read by others (mode {:o}); its secret is no longer one: \
                     make a new key, or `chmod 600` it if no one else could read it",
                    path.display(),
                    mode & 0o777
                )));
            }
        }
        let mut text = String::new();
        file.take(MAX_KEY_FILE_LEN)
            .read_to_string(&mut text)
            .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
        PairingKey::from_json(&text).map_err(|e| match e {
            Error::PairingKey { reason } => refuse(format!("{}: {reason}", path.display())),
            other => other,
        })
    }

    /// The raw key id, as the channel's preamble and a sealed file's header carry it.
    pub(crate) fn id_bytes(&self) -> &[u8; 16] {
        &self.id
    }

    /// The shared secret.
    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The learner list as bytes, bound into the channel's handshake: both ends must agree
    /// on whom the key covers, not only on its secret.
    pub(crate) fn learners_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for learner in &self.learners {
            out.extend_from_slice(
                &u32::try_from(learner.as_str().len())
                    .unwrap_or(0)
                    .to_be_bytes(),
            );
            out.extend_from_slice(learner.as_str().as_bytes());
        }
        out
    }
}

impl std::fmt::Debug for PairingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairingKey")
            .field("id", &self.id())
            .field("learners", &self.learners)
            .finish_non_exhaustive()
    }
}

/// The learners sorted and deduplicated; none, or too many, is refused.
fn checked_learners(mut learners: Vec<UserId>) -> Result<Vec<UserId>> {
    learners.sort();
    learners.dedup();
    if learners.is_empty() {
        return Err(refuse("a pairing key names at least one learner"));
    }
    if learners.len() > MAX_PAIRED_LEARNERS {
        return Err(refuse(format!(
            "a pairing key names at most {MAX_PAIRED_LEARNERS} learners"
        )));
    }
    Ok(learners)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly `N` bytes from `2 * N` hex digits.
fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
