//! The connections `peer serve` holds, in two bounded pools (issue 17, fault 6: 16 sockets
//! sending one byte every 20 s used to hold every slot).
//!
//! A connection starts in the *opening* pool, until its first message arrived whole (the
//! handshake). That pool holds at most [`MAX_OPENING`]; when it is full, the connection waiting
//! longest is dropped to admit the new one, so sockets that never finish a first message only
//! push each other out. A connection whose first message arrived takes one of the [`MAX_PEERS`]
//! exchange slots, or is refused with a reason when they are all taken. A slot is freed when
//! its [`Slot`] is dropped, whatever ended the connection.

use std::collections::VecDeque;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The most exchanges `peer serve` answers at once.
pub const MAX_PEERS: usize = 16;

/// The most connections waiting for their first message at once.
pub const MAX_OPENING: usize = 16;

/// Both pools, shared by the accepting loop and the connections' threads.
#[derive(Clone, Default)]
pub struct Slots {
    pools: Arc<Mutex<Pools>>,
}

#[derive(Default)]
struct Pools {
    /// Connections without a first message yet, oldest first: an id and a handle to close it.
    opening: VecDeque<(u64, TcpStream)>,
    exchanges: usize,
    next_id: u64,
}

/// Why a connection could not take an exchange slot.
#[derive(Debug, PartialEq, Eq)]
pub enum NoSlot {
    /// Every exchange slot is taken.
    Busy,
    /// It waited longest while the opening pool was full, and was dropped.
    Dropped,
}

/// True when a peer's refusal says it is busy ([`NoSlot::Busy`]'s text, from any headway):
/// the peer is unavailable for now, which `peer connect` reports with exit 3.
pub fn is_busy(reason: &str) -> bool {
    reason.contains(&format!("already serves {MAX_PEERS} peers"))
}

impl std::fmt::Display for NoSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoSlot::Busy => write!(f, "this device already serves {MAX_PEERS} peers; try again"),
            NoSlot::Dropped => write!(
                f,
                "it waited longest for its first message while {MAX_OPENING} connections \
                 waited and another arrived"
            ),
        }
    }
}

impl std::error::Error for NoSlot {}

impl Slots {
    fn pools(&self) -> MutexGuard<'_, Pools> {
        // A thread that panicked holding the lock left the counts consistent: every change
        // is one statement.
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection to the opening pool, dropping the one waiting longest when the
    /// pool is full (its socket is shut down, so its thread's read ends at once). Returns the
    /// new connection's slot and the address of the one dropped, if any.
    pub fn admit(&self, stream: &TcpStream) -> std::io::Result<(Slot, Option<String>)> {
        let handle = stream.try_clone()?;
        let mut pools = self.pools();
        let mut dropped = None;
        if pools.opening.len() >= MAX_OPENING {
            if let Some((_, oldest)) = pools.opening.pop_front() {
                dropped = Some(peer_name(&oldest));
                let _ = oldest.shutdown(Shutdown::Both);
            }
        }
        let id = pools.next_id;
        pools.next_id += 1;
        pools.opening.push_back((id, handle));
        let slot = Slot {
            slots: self.clone(),
            place: Place::Opening(id),
        };
        Ok((slot, dropped))
    }

    /// How many connections wait for a first message, and how many exchanges run.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let pools = self.pools();
        (pools.opening.len(), pools.exchanges)
    }
}

/// A connection's place in [`Slots`]; dropping it frees the place.
pub struct Slot {
    slots: Slots,
    place: Place,
}

/// Where a connection is.
#[derive(Clone, Copy)]
enum Place {
    /// In the opening pool, under this id.
    Opening(u64),
    /// In an exchange slot.
    Exchange,
    /// In neither (refused for want of an exchange slot).
    Out,
}

impl Slot {
    /// Moves a connection whose first message arrived from the opening pool to an exchange
    /// slot (a no-op once it holds one).
    pub fn start_exchange(&mut self) -> Result<(), NoSlot> {
        let id = match self.place {
            Place::Exchange => return Ok(()),
            Place::Out => return Err(NoSlot::Busy),
            Place::Opening(id) => id,
        };
        let mut pools = self.slots.pools();
        let Some(at) = pools.opening.iter().position(|(opening, _)| *opening == id) else {
            return Err(NoSlot::Dropped);
        };
        pools.opening.remove(at);
        if pools.exchanges >= MAX_PEERS {
            // Out of the opening pool either way: this connection gets its refusal and goes.
            self.place = Place::Out;
            return Err(NoSlot::Busy);
        }
        pools.exchanges += 1;
        self.place = Place::Exchange;
        Ok(())
    }
}

impl Slot {
    /// True when this connection was dropped from the opening pool to admit a newer one (the
    /// accepting loop logged it already).
    pub fn was_dropped(&self) -> bool {
        match self.place {
            Place::Opening(id) => !self.slots.pools().opening.iter().any(|(o, _)| *o == id),
            Place::Exchange | Place::Out => false,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut pools = self.slots.pools();
        match self.place {
            Place::Exchange => pools.exchanges = pools.exchanges.saturating_sub(1),
            Place::Opening(id) => pools.opening.retain(|(opening, _)| *opening != id),
            Place::Out => {}
        }
    }
}

/// The other side's address, for a log line.
pub fn peer_name(stream: &TcpStream) -> String {
    stream
        .peer_addr()
        .map_or_else(|_| "a peer".to_owned(), |a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn connections(n: usize) -> (TcpListener, Vec<(TcpStream, TcpStream)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let pairs = (0..n)
            .map(|_| {
                let client = TcpStream::connect(addr).unwrap();
                (listener.accept().unwrap().0, client)
            })
            .collect();
        (listener, pairs)
    }

    /// Issue 17 (fault 6): connections without a first message never hold an exchange slot,
    /// and the one waiting longest makes room for a new one.
    #[test]
    fn the_oldest_silent_connection_makes_room_and_exchanges_are_bounded() {
        let slots = Slots::default();
        let (_listener, pairs) = connections(MAX_OPENING + MAX_PEERS + 2);
        let mut silent = Vec::new();
        for (server, _) in &pairs[..MAX_OPENING] {
            silent.push(slots.admit(server).unwrap().0);
        }
        assert_eq!(slots.counts(), (MAX_OPENING, 0));
        let (mut newcomer, dropped) = slots.admit(&pairs[MAX_OPENING].0).unwrap();
        assert!(dropped.is_some());
        // The oldest one's socket was shut down: its client sees the end.
        let mut byte = [0; 1];
        assert_eq!((&pairs[0].1).read(&mut byte).unwrap(), 0);
        assert!(silent[0].was_dropped() && !silent[1].was_dropped());
        assert_eq!(silent[0].start_exchange(), Err(NoSlot::Dropped));
        assert_eq!(newcomer.start_exchange(), Ok(()));
        assert_eq!(slots.counts(), (MAX_OPENING - 1, 1));
        let mut running = vec![newcomer];
        for (server, _) in &pairs[MAX_OPENING + 1..MAX_OPENING + MAX_PEERS] {
            let (mut slot, _) = slots.admit(server).unwrap();
            slot.start_exchange().unwrap();
            running.push(slot);
        }
        let (mut one_too_many, _) = slots.admit(&pairs[MAX_OPENING + MAX_PEERS].0).unwrap();
        assert_eq!(one_too_many.start_exchange(), Err(NoSlot::Busy));
        drop(one_too_many);
        running.pop();
        let (mut next, _) = slots.admit(&pairs[MAX_OPENING + MAX_PEERS + 1].0).unwrap();
        assert_eq!(next.start_exchange(), Ok(()));
        drop((silent, running, next));
        assert_eq!(slots.counts(), (0, 0));
    }
}
