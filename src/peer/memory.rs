//! A [`PeerReplica`] held in memory: learners' documents and what is known of peers, with no
//! store, no file and no clock. It lets a test, the simulation or a fuzzer run the peer
//! protocol ([`PeerSession`](crate::PeerSession)) between devices in one process.

use std::cell::RefCell;
use std::collections::BTreeMap;

use automerge::ActorId;

use crate::content_state::{ContentItem, ContentKey, ContentState};
use crate::document::LearnerDocument;
use crate::error::Result;
use crate::id::UserId;
use crate::peer::{refuse, Hello};
use crate::peer::{InEpoch, PeerReplica};
use crate::progress_update::ProgressUpdate;

/// One device's documents, in memory: a [`PeerReplica`] for driving peer sessions without a
/// store. Like the store, it adopts a peer's document of another epoch and raises its own
/// states into it, joins every value a peer's changes carry (visible winner or not), and keeps
/// one Automerge sync state per peer and learner. Unlike the store it reads no clock, so it
/// does not bound the times a peer sends. Give each device its own name: the name seeds the
/// Automerge actors its changes are signed with.
///
/// ```
/// # fn main() -> headway::Result<()> {
/// use headway::{ContentKey, MemoryReplica, PeerSession, ProgressUpdate, Role, Status, UserId};
/// let (phone, tablet) = (MemoryReplica::new("phone")?, MemoryReplica::new("tablet")?);
/// phone.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k1")?, Status::Completed, 100)?)?;
/// tablet.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k2")?, Status::InProgress, 30)?)?;
/// let user = UserId::new("u")?;
/// let (mut initiator, mut responder) =
///     (PeerSession::new(&user, Role::Initiator), PeerSession::new(&user, Role::Responder));
/// let mut to_tablet = vec![initiator.start(&phone)?];
/// while let Some(message) = to_tablet.pop() {
///     for reply in responder.handle(&tablet, message)? {
///         to_tablet.extend(initiator.handle(&phone, reply)?);
///     }
/// }
/// assert!(initiator.is_finished());
/// assert_eq!(phone.items(&user).len(), 2);
/// assert_eq!(phone.items(&user), tablet.items(&user));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MemoryReplica {
    device: String,
    held: RefCell<Held>,
}

/// What a [`MemoryReplica`] holds.
#[derive(Debug, Default)]
struct Held {
    /// Each learner's document, with the actor this device signs it with.
    documents: BTreeMap<UserId, (LearnerDocument, ActorId)>,
    peers: BTreeMap<(UserId, String), PeerRecord>,
    /// How many documents this device started or adopted: each gets actors of its own.
    epochs: u64,
}

/// What this device keeps about one peer for one learner.
#[derive(Debug, Default)]
struct PeerRecord {
    /// The epoch and heads the peer said it holds (its hello), or both sides share.
    their_epoch: Option<[u8; 16]>,
    heads: Vec<[u8; 32]>,
    /// The sync state's epoch and bytes.
    sync: Option<([u8; 16], Vec<u8>)>,
}

impl MemoryReplica {
    /// An empty device named `device` (the id its hellos carry: at most 256 bytes, no control
    /// characters).
    ///
    /// ```
    /// assert!(headway::MemoryReplica::new("phone").is_ok());
    /// assert!(headway::MemoryReplica::new("").is_err());
    /// ```
    pub fn new(device: &str) -> Result<MemoryReplica> {
        let device = crate::id::check_id("device", device.to_string())?;
        Ok(MemoryReplica {
            device,
            held: RefCell::new(Held::default()),
        })
    }

    /// Records one progress update (an update below the held state changes nothing).
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, MemoryReplica, ProgressUpdate, Status};
    /// let phone = MemoryReplica::new("phone")?;
    /// let key = ContentKey::new("u", "c", "b", "k")?;
    /// phone.record(ProgressUpdate::new(key.clone(), Status::Completed, 100)?)?;
    /// phone.record(ProgressUpdate::new(key.clone(), Status::InProgress, 40)?)?;
    /// assert_eq!(phone.state(&key).map(|s| s.progress().get()), Some(100));
    /// # Ok(()) }
    /// ```
    pub fn record(&self, update: ProgressUpdate) -> Result<()> {
        self.with_document(update.key().user(), |doc| {
            doc.raise(update.key(), update.state())?;
            doc.commit();
            Ok(())
        })
    }

    /// Every content state held for `user`.
    ///
    /// ```
    /// let phone = headway::MemoryReplica::new("phone")?;
    /// assert!(phone.items(&headway::UserId::new("u")?).is_empty());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn items(&self, user: &UserId) -> Vec<ContentItem> {
        let held = self.held.borrow();
        held.documents
            .get(user)
            .map(|(doc, _)| doc.items())
            .unwrap_or_default()
    }

    /// The state held for one content item.
    ///
    /// ```
    /// let phone = headway::MemoryReplica::new("phone")?;
    /// assert_eq!(phone.state(&headway::ContentKey::new("u", "c", "b", "k")?), None);
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn state(&self, key: &ContentKey) -> Option<ContentState> {
        let held = self.held.borrow();
        held.documents.get(key.user())?.0.state(key)
    }

    /// The learners this device holds a document for.
    ///
    /// ```
    /// let phone = headway::MemoryReplica::new("phone")?;
    /// assert!(phone.learners().is_empty());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn learners(&self) -> Vec<UserId> {
        self.held.borrow().documents.keys().cloned().collect()
    }

    /// An actor of this device for its next epoch.
    fn next_actor(&self, held: &mut Held) -> ActorId {
        held.epochs += 1;
        let mut bytes = self.device.as_bytes().to_vec();
        bytes.extend_from_slice(&held.epochs.to_be_bytes());
        ActorId::from(bytes)
    }

    /// Runs `step` on `user`'s document, started empty if this device holds none. A step that
    /// fails leaves the document as it was before it.
    fn with_document<T>(
        &self,
        user: &UserId,
        step: impl FnOnce(&mut LearnerDocument) -> Result<T>,
    ) -> Result<T> {
        let mut held = self.held.borrow_mut();
        if !held.documents.contains_key(user) {
            let actor = self.next_actor(&mut held);
            let doc = LearnerDocument::with_actor(user, actor.clone())?;
            held.documents.insert(user.clone(), (doc, actor));
        }
        let (doc, actor) = held
            .documents
            .get_mut(user)
            .ok_or_else(|| refuse("the document is not loaded"))?;
        let before = doc.save();
        let outcome = step(doc);
        if outcome.is_err() {
            *doc = LearnerDocument::load(user, &before, Some(actor.clone()))?;
        }
        outcome
    }

    /// Raises `doc` to the join of what it shows and `values`, writing only where it falls
    /// short (as the store's table does): what a peer's changes carried, and what the document
    /// held before them, so a hostile change that deletes a register hides nothing.
    fn join(doc: &mut LearnerDocument, values: Vec<ContentItem>) -> Result<()> {
        for (key, state) in values.into_iter().map(ContentItem::into_parts) {
            let shown = doc.state(&key);
            let joined = shown.map_or(state, |held| held.merge(&state));
            if shown != Some(joined) {
                doc.raise(&key, &joined)?;
            }
        }
        doc.commit();
        Ok(())
    }

    /// Applies what a peer sent with `apply` (which returns the values its changes wrote),
    /// then joins them and everything the document showed before into it.
    fn receive_into(
        doc: &mut LearnerDocument,
        apply: impl FnOnce(&mut LearnerDocument) -> Result<Vec<ContentItem>>,
    ) -> Result<()> {
        let mut values = doc.items();
        values.extend(apply(doc)?);
        Self::join(doc, values)
    }
}

impl PeerReplica for MemoryReplica {
    fn hello(&self, user: &UserId) -> Result<Hello> {
        let mut held = self.held.borrow_mut();
        let Some((doc, _)) = held.documents.get_mut(user) else {
            return Ok(Hello {
                user: user.clone(),
                device: self.device.clone(),
                epoch: None,
                changes: 0,
                heads: Vec::new(),
            });
        };
        doc.commit();
        Ok(Hello {
            user: user.clone(),
            device: self.device.clone(),
            epoch: doc.epoch(),
            changes: u64::try_from(doc.change_count()).unwrap_or(u64::MAX),
            heads: doc.heads().iter().map(|h| h.0).collect(),
        })
    }

    fn remember(&self, user: &UserId, hello: &Hello) -> Result<()> {
        let mut held = self.held.borrow_mut();
        let record = held
            .peers
            .entry((user.clone(), hello.device.clone()))
            .or_default();
        record.their_epoch = hello.epoch;
        record.heads.clone_from(&hello.heads);
        Ok(())
    }

    fn whole_document(&self, user: &UserId) -> Result<Vec<u8>> {
        self.with_document(user, |doc| Ok(doc.save()))
    }

    fn receive_document(&self, user: &UserId, bytes: &[u8]) -> Result<Option<[u8; 16]>> {
        let mut theirs = LearnerDocument::load(user, bytes, None)?;
        let their_epoch = theirs.epoch();
        let ours = self.with_document(user, |doc| {
            let epoch = doc.epoch();
            if epoch.is_some() && epoch == their_epoch {
                Self::receive_into(doc, |doc| {
                    let before = doc.heads();
                    doc.merge(&mut theirs)?;
                    Ok(doc.written_since(&before)?.values)
                })?;
                return Ok(None);
            }
            Ok(Some(doc.items()))
        })?;
        if let Some(ours) = ours {
            // A new epoch: our actor must never reuse an (actor, seq) of history we drop.
            let mut held = self.held.borrow_mut();
            let actor = self.next_actor(&mut held);
            let mut adopted = LearnerDocument::load(user, bytes, Some(actor.clone()))?;
            Self::join(&mut adopted, ours)?;
            held.documents.insert(user.clone(), (adopted, actor));
        }
        let held = self.held.borrow();
        Ok(held.documents.get(user).and_then(|(doc, _)| doc.epoch()))
    }

    fn receive_changes(&self, user: &UserId, bytes: &[u8]) -> Result<()> {
        self.with_document(user, |doc| {
            Self::receive_into(doc, |doc| {
                let written = doc
                    .receive(bytes)
                    .map_err(|e| refuse(format!("the changes do not apply: {e}")))?;
                Ok(written.values)
            })
        })
    }

    fn sync_state(&self, user: &UserId, peer: &str) -> Result<automerge::sync::State> {
        let mut held = self.held.borrow_mut();
        let Held {
            documents, peers, ..
        } = &mut *held;
        let Some((doc, _)) = documents.get_mut(user) else {
            return Ok(automerge::sync::State::new());
        };
        let stored = peers
            .get(&(user.clone(), peer.to_string()))
            .and_then(|record| record.sync.as_ref())
            .filter(|(epoch, _)| Some(*epoch) == doc.epoch())
            .and_then(|(_, bytes)| automerge::sync::State::decode(bytes).ok());
        Ok(stored
            .filter(|state| doc.has_all(&state.shared_heads))
            .unwrap_or_default())
    }

    fn save_sync_state(
        &self,
        user: &UserId,
        peer: &str,
        state: &automerge::sync::State,
    ) -> Result<()> {
        let mut held = self.held.borrow_mut();
        let epoch = held.documents.get(user).and_then(|(doc, _)| doc.epoch());
        let record = held
            .peers
            .entry((user.clone(), peer.to_string()))
            .or_default();
        record.sync = epoch.map(|epoch| (epoch, state.encode()));
        if !state.shared_heads.is_empty() {
            record.their_epoch = epoch;
            record.heads = state.shared_heads.iter().map(|h| h.0).collect();
        }
        Ok(())
    }

    fn generate_sync(
        &self,
        user: &UserId,
        state: &mut automerge::sync::State,
        epoch: Option<[u8; 16]>,
    ) -> Result<InEpoch<Option<Vec<u8>>>> {
        self.with_document(user, |doc| {
            if doc.epoch() != epoch {
                return Ok(InEpoch::Moved);
            }
            doc.generate_sync_message(state).map(InEpoch::Done)
        })
    }

    fn receive_sync(
        &self,
        user: &UserId,
        state: &mut automerge::sync::State,
        bytes: &[u8],
        epoch: Option<[u8; 16]>,
    ) -> Result<InEpoch<()>> {
        self.with_document(user, |doc| {
            if doc.epoch() != epoch {
                return Ok(InEpoch::Moved);
            }
            Self::receive_into(doc, |doc| {
                Ok(doc.receive_sync_message(state, bytes)?.values)
            })?;
            Ok(InEpoch::Done(()))
        })
    }
}
