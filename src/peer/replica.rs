//! The narrow interface between a [`PeerSession`](crate::PeerSession) and the copy of a
//! learner's document it syncs: the few reads and merges one exchange needs. The session
//! decides; a replica only does what it is told. The store is the replica devices use
//! (`store_replica.rs`); [`MemoryReplica`](crate::MemoryReplica) holds its documents in
//! memory, so a test, the simulation or a fuzzer can drive sessions with no store and no
//! transport.

use crate::error::Result;
use crate::id::UserId;
use crate::peer::Hello;
use crate::store::InEpoch;

/// This device's side of a peer exchange: its copy of each learner's document and what it
/// remembers of peers. Bytes handed to a replica come from a peer and are untrusted: a method
/// refuses them with a typed error and changes nothing a reader could see go down.
///
/// ```
/// # fn main() -> headway::Result<()> {
/// use headway::{ContentKey, MemoryReplica, PeerReplica, ProgressUpdate, Status, UserId};
/// let phone = MemoryReplica::new("phone")?;
/// phone.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k")?, Status::Completed, 100)?)?;
/// let hello = phone.hello(&UserId::new("u")?)?;
/// assert_eq!((hello.device.as_str(), hello.epoch.is_some()), ("phone", true));
/// let tablet = MemoryReplica::new("tablet")?;
/// tablet.receive_document(&UserId::new("u")?, &phone.whole_document(&UserId::new("u")?)?)?;
/// assert_eq!(tablet.items(&UserId::new("u")?), phone.items(&UserId::new("u")?));
/// # Ok(()) }
/// ```
pub trait PeerReplica {
    /// What this device says about its copy of `user`'s document. A learner it never held
    /// gets no epoch, and nothing is written.
    fn hello(&self, user: &UserId) -> Result<Hello>;

    /// Keeps what a peer's hello says it holds of `user`'s document.
    fn remember(&self, user: &UserId, hello: &Hello) -> Result<()>;

    /// The whole of `user`'s document.
    fn whole_document(&self, user: &UserId) -> Result<Vec<u8>>;

    /// A whole document from a peer: merged if it is of our epoch, otherwise adopted (it
    /// becomes this device's document and every state of ours is raised into it). Returns the
    /// document's epoch afterwards.
    fn receive_document(&self, user: &UserId, bytes: &[u8]) -> Result<Option<[u8; 16]>>;

    /// Changes of our epoch from a peer (a file's body).
    fn receive_changes(&self, user: &UserId, bytes: &[u8]) -> Result<()>;

    /// The Automerge sync state kept for `peer`, if it belongs to the document's current epoch
    /// and the document holds every change it says both sides share; a fresh one otherwise.
    fn sync_state(&self, user: &UserId, peer: &str) -> Result<automerge::sync::State>;

    /// Keeps the Automerge sync state for `peer`, tied to the document's current epoch.
    fn save_sync_state(
        &self,
        user: &UserId,
        peer: &str,
        state: &automerge::sync::State,
    ) -> Result<()>;

    /// The next Automerge sync message (`None`: nothing to send), advancing `state`, if the
    /// document is still in `epoch`.
    fn generate_sync(
        &self,
        user: &UserId,
        state: &mut automerge::sync::State,
        epoch: Option<[u8; 16]>,
    ) -> Result<InEpoch<Option<Vec<u8>>>>;

    /// Applies a peer's Automerge sync message and keeps what it brought, if the document is
    /// still in `epoch`.
    fn receive_sync(
        &self,
        user: &UserId,
        state: &mut automerge::sync::State,
        bytes: &[u8],
        epoch: Option<[u8; 16]>,
    ) -> Result<InEpoch<()>>;
}
