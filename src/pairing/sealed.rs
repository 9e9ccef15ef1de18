//! Sealed peer files: a peer file encrypted and authenticated with a pairing key, so only a
//! device holding that key opens it, and a changed byte is noticed.
//!
//! Layout: a header (`HWPF`, a version, the 16-byte key id, the learner's id behind a 2-byte
//! length), a 24-byte random nonce, then the plain peer file sealed with XChaCha20-Poly1305.
//! The file key is derived from the pairing secret with HKDF (BLAKE2s, the key id as salt);
//! the header is the associated data, so it cannot be changed either.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::SimpleHkdf;

use crate::error::{Error, Result};
use crate::id::{random_bytes, UserId};
use crate::pairing::PairingKey;
use crate::peer::SEALED_FILE_MAGIC;
use crate::store::Store;

/// The sealed file format's version.
const VERSION: u8 = 1;
/// What the file key is derived for.
const FILE_KEY_INFO: &[u8] = b"headway sealed peer file v1";
const NONCE_LEN: usize = 24;

fn not_paired(reason: impl Into<String>) -> Error {
    Error::NotPaired {
        reason: reason.into(),
    }
}

fn cipher(key: &PairingKey) -> Result<XChaCha20Poly1305> {
    let mut file_key = [0u8; 32];
    SimpleHkdf::<blake2::Blake2s256>::new(Some(key.id_bytes()), key.secret())
        .expand(FILE_KEY_INFO, &mut file_key)
        .map_err(|e| not_paired(format!("deriving the file key failed: {e}")))?;
    XChaCha20Poly1305::new_from_slice(&file_key)
        .map_err(|e| not_paired(format!("the file key is unusable: {e}")))
}

fn header(key_id: &[u8; 16], user: &UserId) -> Result<Vec<u8>> {
    let mut out = SEALED_FILE_MAGIC.to_vec();
    out.push(VERSION);
    out.extend_from_slice(key_id);
    let len = u16::try_from(user.as_str().len())
        .map_err(|_| not_paired("the learner's id is too long for a sealed file"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(user.as_str().as_bytes());
    Ok(out)
}

/// The key the pairing key must cover, or why not.
fn check_covers(key: &PairingKey, user: &UserId) -> Result<()> {
    if key.covers(user) {
        return Ok(());
    }
    Err(not_paired(format!(
        "pairing key {} does not cover learner {user:?}",
        key.id()
    )))
}

/// `file` (a plain peer file of `user`) sealed with `key`.
fn seal(key: &PairingKey, user: &UserId, file: &[u8]) -> Result<Vec<u8>> {
    check_covers(key, user)?;
    let header = header(key.id_bytes(), user)?;
    let nonce = random_bytes::<NONCE_LEN>().map_err(|e| not_paired(e.to_string()))?;
    let sealed = cipher(key)?
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: file,
                aad: &header,
            },
        )
        .map_err(|_| not_paired("sealing the file failed"))?;
    let mut out = header;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The plain peer file inside a sealed `file`, once verified with `key`.
fn open(key: &PairingKey, user: &UserId, file: &[u8]) -> Result<Vec<u8>> {
    check_covers(key, user)?;
    let truncated = || not_paired("the sealed file is truncated");
    let rest = file
        .strip_prefix(SEALED_FILE_MAGIC.as_slice())
        .ok_or_else(|| not_paired("the file is not sealed"))?;
    let (&version, rest) = rest.split_first().ok_or_else(truncated)?;
    if version != VERSION {
        return Err(not_paired(format!(
            "sealed file version {version} is not one this build reads"
        )));
    }
    let (key_id, rest) = rest.split_at_checked(16).ok_or_else(truncated)?;
    if key_id != key.id_bytes() {
        return Err(not_paired(format!(
            "the file is sealed with another pairing key (id {}), not {}",
            key_id
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            key.id()
        )));
    }
    let (len, rest) = rest.split_at_checked(2).ok_or_else(truncated)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    let (learner, rest) = rest.split_at_checked(len).ok_or_else(truncated)?;
    if learner != user.as_str().as_bytes() {
        return Err(not_paired(format!(
            "the sealed file holds learner {:?}'s progress, not {user:?}'s",
            crate::error::shorten(&String::from_utf8_lossy(learner))
        )));
    }
    let header_len = file.len() - rest.len();
    let (nonce, sealed) = rest.split_at_checked(NONCE_LEN).ok_or_else(truncated)?;
    cipher(key)?
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &file[..header_len],
            },
        )
        .map_err(|_| {
            not_paired(format!(
                "the sealed file does not open with pairing key {}: the key differs, or the \
                 file was changed",
                key.id()
            ))
        })
}

/// Sealed peer files: [`Store::peer_export`] and [`Store::peer_import`] with a pairing key.
impl Store {
    /// A peer file (see [`Store::peer_export`]) sealed with `key`, which must cover `user`:
    /// only a device holding the key opens it, and a changed byte is refused.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, PairingKey, ProgressUpdate, Status, Store, UserId};
    /// let asha = UserId::new("asha")?;
    /// let key = PairingKey::generate([asha.clone()])?;
    /// let (school, phone) = (Store::open_in_memory()?, Store::open_in_memory()?);
    /// school.record(ProgressUpdate::new(ContentKey::new("asha", "c", "b", "k")?, Status::Completed, 100)?)?;
    /// let file = school.peer_export_sealed(&asha, None, &key)?;
    /// assert!(phone.peer_import(&asha, &file).is_err()); // sealed: needs the key
    /// let other = PairingKey::generate([asha.clone()])?;
    /// assert!(phone.peer_import_sealed(&asha, &file, &other).is_err()); // another key
    /// phone.peer_import_sealed(&asha, &file, &key)?;
    /// assert_eq!(phone.items(&asha, None)?, school.items(&asha, None)?);
    /// # Ok(()) }
    /// ```
    pub fn peer_export_sealed(
        &self,
        user: &UserId,
        since_peer: Option<&str>,
        key: &PairingKey,
    ) -> Result<Vec<u8>> {
        check_covers(key, user)?;
        seal(key, user, &self.peer_export(user, since_peer)?)
    }

    /// A peer's file imported ([`Store::peer_import`], or [`Store::peer_import_sealed`] with
    /// `key`): how many of the learner's content items it raised. What the bindings answer.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, ProgressUpdate, Status, Store, UserId};
    /// let (school, phone) = (Store::open_in_memory()?, Store::open_in_memory()?);
    /// school.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k")?, Status::Completed, 100)?)?;
    /// let file = school.peer_export(&UserId::new("u")?, None)?;
    /// assert_eq!(phone.peer_import_counted(&UserId::new("u")?, &file, None)?, 1);
    /// assert_eq!(phone.peer_import_counted(&UserId::new("u")?, &file, None)?, 0);
    /// # Ok(()) }
    /// ```
    pub fn peer_import_counted(
        &self,
        user: &UserId,
        file: &[u8],
        key: Option<&PairingKey>,
    ) -> Result<usize> {
        // The import announces each raised item as a change from a peer before it returns.
        // Unbounded (a capacity allocates nothing up front): a file of more items than a
        // default subscription holds is counted whole.
        let changes = self.subscribe_with_capacity(usize::MAX);
        match key {
            Some(key) => self.peer_import_sealed(user, file, key)?,
            None => self.peer_import(user, file)?,
        }
        let raised: std::collections::BTreeSet<crate::content_state::ContentKey> = changes
            .drain()
            .into_iter()
            .filter_map(|event| match event {
                crate::events::Event::ContentStateChanged(change)
                    if change.origin == crate::events::ChangeOrigin::Peer
                        && change.key.user() == user =>
                {
                    Some(change.key)
                }
                _ => None,
            })
            .collect();
        Ok(raised.len())
    }

    /// Imports a sealed peer file (see [`Store::peer_export_sealed`]) once it opened with
    /// `key`; a file sealed with another key, changed, for another learner, or a key that does
    /// not cover `user` is refused with [`Error::NotPaired`] and changes nothing, and so is a
    /// plain (unsealed) file: asked to verify, nothing unverified is taken. A plain file is
    /// imported with [`Store::peer_import`], where the person carrying it is trusted.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, PairingKey, ProgressUpdate, Status, Store, UserId};
    /// let asha = UserId::new("asha")?;
    /// let key = PairingKey::generate([asha.clone()])?;
    /// let (school, phone) = (Store::open_in_memory()?, Store::open_in_memory()?);
    /// school.record(ProgressUpdate::new(ContentKey::new("asha", "c", "b", "k")?, Status::Completed, 100)?)?;
    /// let mut file = school.peer_export_sealed(&asha, None, &key)?;
    /// let last = file.len() - 1;
    /// file[last] ^= 1; // one changed byte
    /// assert!(matches!(phone.peer_import_sealed(&asha, &file, &key), Err(headway::Error::NotPaired { .. })));
    /// let plain = school.peer_export(&asha, None)?; // unsealed: cannot be verified
    /// assert!(matches!(phone.peer_import_sealed(&asha, &plain, &key), Err(headway::Error::NotPaired { .. })));
    /// assert!(phone.items(&asha, None)?.is_empty());
    /// phone.peer_import(&asha, &plain)?; // the carrier is trusted
    /// assert_eq!(phone.items(&asha, None)?, school.items(&asha, None)?);
    /// # Ok(()) }
    /// ```
    pub fn peer_import_sealed(&self, user: &UserId, file: &[u8], key: &PairingKey) -> Result<()> {
        check_covers(key, user)?;
        if !file.starts_with(SEALED_FILE_MAGIC) {
            // Asked to verify, an unsealed file is refused: anyone could have written it
            // (issue 17). Without a key, `peer_import` takes it on the carrier's word.
            return Err(Error::NotPaired {
                reason: "this peer file is not sealed, so it cannot be verified with the key: import it without the key only if you trust whoever carried it"
                    .into(),
            });
        }
        self.peer_import(user, &open(key, user, file)?)
    }
}
