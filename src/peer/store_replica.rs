//! The store as a [`PeerReplica`]: the thin driver between a [`PeerSession`](crate::PeerSession)
//! and the store. Each thing the session asks for is one of the store's peer steps
//! (`src/store/peers.rs`: one transaction each over the learner's document, the table and the
//! peer's persisted sync state); nothing here decides. Also the peer file
//! ([`Store::peer_export`], [`Store::peer_import`]): a hello's frame, then a body's, the same
//! frames as a live connection.

use crate::error::{Error, Result};
use crate::id::UserId;
use crate::peer::{refuse, Hello, InEpoch, PeerMessage, PeerReplica, SEALED_FILE_MAGIC};
use crate::store::Store;

impl PeerReplica for Store {
    fn hello(&self, user: &UserId) -> Result<Hello> {
        let summary = self.document_summary(user)?;
        Ok(Hello {
            user: user.clone(),
            device: summary.device,
            epoch: summary.epoch,
            changes: summary.changes,
            heads: summary.heads,
        })
    }

    fn remember(&self, user: &UserId, hello: &Hello) -> Result<()> {
        self.remember_peer(user, &hello.device, hello.epoch, &hello.heads)
    }

    fn whole_document(&self, user: &UserId) -> Result<Vec<u8>> {
        self.peer_document(user)
    }

    fn receive_document(&self, user: &UserId, bytes: &[u8]) -> Result<Option<[u8; 16]>> {
        self.peer_receive_document(user, bytes)?;
        self.document_epoch(user)
    }

    fn receive_changes(&self, user: &UserId, bytes: &[u8]) -> Result<()> {
        self.peer_receive_changes(user, bytes)
    }

    fn sync_state(&self, user: &UserId, peer: &str) -> Result<automerge::sync::State> {
        self.peer_sync_state(user, peer)
    }

    fn save_sync_state(
        &self,
        user: &UserId,
        peer: &str,
        state: &automerge::sync::State,
    ) -> Result<()> {
        self.peer_save_sync_state(user, peer, state)
    }

    fn generate_sync(
        &self,
        user: &UserId,
        state: &mut automerge::sync::State,
        epoch: Option<[u8; 16]>,
    ) -> Result<InEpoch<Option<Vec<u8>>>> {
        self.peer_generate(user, state, epoch)
    }

    fn receive_sync(
        &self,
        user: &UserId,
        state: &mut automerge::sync::State,
        bytes: &[u8],
        epoch: Option<[u8; 16]>,
    ) -> Result<InEpoch<()>> {
        self.peer_receive(user, state, bytes, epoch)
    }
}

impl Store {
    /// A file for a peer device: the changes it lacks if this device knows what `since_peer`
    /// holds in the same epoch, else the whole document.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ContentKey, ProgressUpdate, Status, Store, UserId};
    /// let (school, phone) = (Store::open_in_memory()?, Store::open_in_memory()?);
    /// school.record(ProgressUpdate::new(ContentKey::new("u", "c", "b", "k")?, Status::Completed, 100)?)?;
    /// let file = school.peer_export(&UserId::new("u")?, None)?;
    /// phone.peer_import(&UserId::new("u")?, &file)?;
    /// assert_eq!(phone.items(&UserId::new("u")?, None)?, school.items(&UserId::new("u")?, None)?);
    /// # Ok(()) }
    /// ```
    pub fn peer_export(&self, user: &UserId, since_peer: Option<&str>) -> Result<Vec<u8>> {
        let hello = self.hello(user)?;
        let known = match since_peer {
            Some(peer) => self.what_peer_holds(user, peer)?,
            None => None,
        };
        let body = match known {
            Some((Some(epoch), heads)) if hello.epoch == Some(epoch) => {
                PeerMessage::Changes(self.changes_for_peer(user, &heads)?)
            }
            _ => PeerMessage::Document(self.whole_document(user)?),
        };
        let mut file = Vec::new();
        for message in [PeerMessage::Hello(hello), body] {
            message
                .write_framed(&mut file)
                .map_err(|e| refuse(e.to_string()))?;
        }
        Ok(file)
    }

    /// Imports a peer's file (see [`Store::peer_export`]): refused whole, changing nothing, if
    /// it is malformed, for another learner, or does not apply. A sealed file
    /// ([`Store::peer_export_sealed`]) is refused with [`Error::NotPaired`]: it opens only
    /// with its key ([`Store::peer_import_sealed`]).
    pub fn peer_import(&self, user: &UserId, file: &[u8]) -> Result<()> {
        if file.starts_with(SEALED_FILE_MAGIC) {
            return Err(Error::NotPaired {
                reason: "the file is sealed with a pairing key: import it with that key".into(),
            });
        }
        let mut messages = Vec::new();
        let mut rest = file;
        // Any framing error in a file is a file that ends before its frames do.
        while let Some(message) =
            PeerMessage::read_framed(&mut rest).map_err(|_| refuse("the file is truncated"))?
        {
            messages.push(message?);
            if messages.len() > 2 {
                return Err(refuse("the file holds more than a hello and a body"));
            }
        }
        let [PeerMessage::Hello(hello), body] = messages.as_slice() else {
            return Err(refuse(
                "the file is not a hello followed by a document or changes",
            ));
        };
        if hello.user != *user {
            return Err(refuse(format!(
                "the file holds learner {:?}'s progress, not {user:?}'s",
                crate::error::shorten(&hello.user)
            )));
        }
        crate::id::check_id("device", hello.device.clone()).map_err(|e| refuse(e.to_string()))?;
        match body {
            PeerMessage::Document(bytes) => self.peer_receive_document(user, bytes)?,
            PeerMessage::Changes(bytes) => self.peer_receive_changes(user, bytes)?,
            _ => return Err(refuse("the file's body is neither a document nor changes")),
        }
        self.remember(user, hello)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content_state::{ContentKey, Status};
    use crate::peer::{PeerSession, Role, MAX_INFLATION_RATIO};
    use crate::progress_update::ProgressUpdate;

    /// What real exchanges send stays far below the inflation cap: a first sync of 2,000
    /// contents with Sunbird-like ids, then 2,000 updates as changes of the same epoch.
    #[test]
    fn real_payloads_inflate_far_below_the_cap() {
        let user = UserId::new("learner-7f3c2a").unwrap();
        let (a, b) = (
            Store::open_in_memory().unwrap(),
            Store::open_in_memory().unwrap(),
        );
        let updates = |status: Status, progress: i64| {
            (0..2000)
                .map(|i| {
                    let key = ContentKey::new(
                        user.as_str(),
                        format!("do_1131{:017}", i / 50),
                        "01311111111111111111",
                        format!("do_1139{:017}", i * 7919),
                    )
                    .unwrap();
                    ProgressUpdate::new(key, status, progress).unwrap()
                })
                .collect::<Vec<_>>()
        };
        a.record_batch(updates(Status::InProgress, 10)).unwrap();
        let mut worst = 0.0f64;
        // Every message goes over the wire format, both ways; the worst ratio is kept.
        let mut wire = |message: PeerMessage| {
            let bytes = message.encode();
            if let PeerMessage::Document(p) | PeerMessage::Changes(p) | PeerMessage::Sync(p) =
                &message
            {
                worst = worst.max(p.len() as f64 / bytes.len() as f64);
            }
            PeerMessage::decode(&bytes).unwrap()
        };
        let exchange = |wire: &mut dyn FnMut(PeerMessage) -> PeerMessage| {
            let mut initiator = PeerSession::new(&user, Role::Initiator);
            let mut responder = PeerSession::new(&user, Role::Responder);
            let mut to_b = vec![initiator.start(&a).unwrap()];
            while let Some(message) = to_b.pop() {
                for reply in responder.handle(&b, wire(message)).unwrap() {
                    to_b.extend(initiator.handle(&a, wire(reply)).unwrap());
                }
            }
        };
        exchange(&mut wire);
        a.record_batch(updates(Status::Completed, 100)).unwrap();
        exchange(&mut wire);
        println!("worst inflation ratio of a real payload: {worst:.1}");
        assert!(worst * 4.0 < MAX_INFLATION_RATIO as f64, "{worst:.1}");
    }
}
