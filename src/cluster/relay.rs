//! One shard's outgoing work for the others, gathered during a loop turn and handed over once
//! per shard per turn (one channel send and one wake-up, however many messages).

use super::{Backplane, Frames, Remote};
use std::sync::Arc;

/// Per-shard batches of [`Remote`] work, filled during a turn and sent by [`Relay::flush`].
#[derive(Debug)]
pub struct Relay {
    /// The shard that owns this relay: never a destination.
    shard: usize,
    /// Work per destination shard. Invariant: `batches[self.shard]` stays empty.
    batches: Vec<Vec<Remote>>,
}

impl Relay {
    /// An empty relay for `shard` of `shards`.
    pub fn new(shard: usize, shards: usize) -> Self {
        Relay { shard, batches: (0..shards).map(|_| Vec::new()).collect() }
    }

    /// Queues `work` for `shard` (ignored for this relay's own shard or an unknown one).
    pub fn to(&mut self, shard: usize, work: Remote) {
        if shard != self.shard {
            if let Some(batch) = self.batches.get_mut(shard) {
                batch.push(work);
            }
        }
    }

    /// Queues a room's frames for every shard in `mask` but this one (the room's shard mask).
    pub fn room(&mut self, mask: u64, room: &Arc<str>, frames: &Frames, chat: bool) {
        for shard in (0..self.batches.len()).filter(|s| mask & (1 << s) != 0) {
            self.to(shard, Remote::Room { room: room.clone(), frames: frames.clone(), chat });
        }
    }

    /// Queues work made by `make` for every other shard.
    pub fn everyone(&mut self, mut make: impl FnMut() -> Remote) {
        for shard in 0..self.batches.len() {
            if shard != self.shard {
                self.to(shard, make());
            }
        }
    }

    /// Hands every non-empty batch to its shard.
    pub fn flush(&mut self, backplane: &dyn Backplane) {
        for (shard, batch) in self.batches.iter_mut().enumerate() {
            if !batch.is_empty() {
                backplane.deliver(shard, std::mem::take(batch));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frames() -> Frames {
        Frames { binary: Bytes::from_static(b"b"), json: Bytes::from_static(b"j"), ws: Bytes::from_static(b"w") }
    }

    #[test]
    fn room_frames_go_to_the_masked_shards_but_never_home() {
        let mut relay = Relay::new(1, 4);
        relay.room(0b1011, &"r".into(), &frames(), true);
        let sizes: Vec<usize> = relay.batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 0, 0, 1]);
        relay.everyone(|| Remote::All { frames: frames() });
        let sizes: Vec<usize> = relay.batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 0, 1, 2]);
        relay.to(9, Remote::All { frames: frames() });
    }
}
