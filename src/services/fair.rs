//! A bounded job queue shared by a pool of worker threads, fair across submitters: jobs are
//! taken round-robin across keys (source addresses), so a key with many jobs waiting delays
//! another key's job by at most one job of its own per round, not by its whole backlog.
//!
//! Bounds, both checked before a job is queued: a key may have at most `per_key` jobs waiting or
//! running at once, and at most `total` jobs wait in all. Past either, [`FairQueue::push`]
//! refuses the job ([`Busy`]) and the submitter answers "busy, retry" to that client alone.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Condvar, Mutex};

/// Why a job was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    /// This key already has `per_key` jobs waiting or running.
    Key,
    /// `total` jobs are waiting.
    Full,
    /// The queue is closed (the service is stopping).
    Closed,
}

/// One key's jobs.
struct Lane<J> {
    /// Waiting, oldest first.
    waiting: VecDeque<J>,
    /// Jobs taken by a worker and not yet [`FairQueue::done`].
    running: usize,
}

struct Inner<K, J> {
    /// Keys with jobs waiting, in turn order; each key at most once.
    turns: VecDeque<K>,
    /// Per key; a key with nothing waiting or running has no entry (the map stays bounded).
    lanes: HashMap<K, Lane<J>>,
    /// Jobs waiting in all lanes. Invariant: the sum of `waiting.len()`, `<= total`.
    waiting: usize,
    /// Set once: no more jobs are accepted; workers drain what waits, then stop.
    closed: bool,
}

/// A bounded, round-robin-by-key job queue for a pool of threads.
pub struct FairQueue<K, J> {
    inner: Mutex<Inner<K, J>>,
    /// Signalled when a job is queued or the queue closes.
    ready: Condvar,
    /// Most jobs one key may have waiting or running.
    per_key: usize,
    /// Most jobs waiting in all.
    total: usize,
}

impl<K: Hash + Eq + Clone, J> FairQueue<K, J> {
    /// An empty queue with the given bounds (each at least 1).
    pub fn new(per_key: usize, total: usize) -> Self {
        let inner = Inner { turns: VecDeque::new(), lanes: HashMap::new(), waiting: 0, closed: false };
        FairQueue { inner: Mutex::new(inner), ready: Condvar::new(), per_key: per_key.max(1), total: total.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, J>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job` for `key`, or refuses it.
    pub fn push(&self, key: K, job: J) -> Result<(), Busy> {
        let mut st = self.lock();
        if st.closed {
            return Err(Busy::Closed);
        }
        let outstanding = st.lanes.get(&key).map_or(0, |l| l.waiting.len() + l.running);
        if outstanding >= self.per_key {
            return Err(Busy::Key);
        }
        if st.waiting >= self.total {
            return Err(Busy::Full);
        }
        let lane = st.lanes.entry(key.clone()).or_insert_with(|| Lane { waiting: VecDeque::new(), running: 0 });
        lane.waiting.push_back(job);
        if lane.waiting.len() == 1 {
            st.turns.push_back(key);
        }
        st.waiting += 1;
        drop(st);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job, the key whose turn it is: blocks while nothing waits; `None` once the queue
    /// is closed and drained. The caller must call [`FairQueue::done`] with the key afterwards.
    pub fn pop(&self) -> Option<(K, J)> {
        let mut st = self.lock();
        loop {
            if let Some(key) = st.turns.pop_front() {
                // A key in `turns` always has a lane with a job waiting.
                let Some(lane) = st.lanes.get_mut(&key) else { continue };
                let Some(job) = lane.waiting.pop_front() else { continue };
                lane.running += 1;
                let more = !lane.waiting.is_empty();
                st.waiting -= 1;
                if more {
                    st.turns.push_back(key.clone());
                }
                return Some((key, job));
            }
            if st.closed {
                return None;
            }
            st = self.ready.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A job of `key` taken by [`FairQueue::pop`] is finished.
    pub fn done(&self, key: &K) {
        let mut st = self.lock();
        if let Some(lane) = st.lanes.get_mut(key) {
            lane.running = lane.running.saturating_sub(1);
            if lane.running == 0 && lane.waiting.is_empty() {
                st.lanes.remove(key);
            }
        }
    }

    /// Accepts no more jobs; workers finish what waits, then their `pop` returns `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_take_turns_and_a_busy_key_delays_another_by_one_job_a_round() {
        let q = FairQueue::new(10, 100);
        (0..5).for_each(|j| q.push("storm", j).unwrap());
        q.push("honest", 100).unwrap();
        let order: Vec<_> = (0..3).map(|_| q.pop().unwrap()).collect();
        assert_eq!(order, [("storm", 0), ("honest", 100), ("storm", 1)]);
    }

    #[test]
    fn a_key_over_its_share_is_busy_alone_and_done_frees_a_slot() {
        let q = FairQueue::new(2, 3);
        q.push("a", 1).unwrap();
        q.push("a", 2).unwrap();
        assert_eq!(q.push("a", 3), Err(Busy::Key));
        q.push("b", 1).unwrap();
        assert_eq!(q.push("c", 1), Err(Busy::Full), "three wait in all");
        let (k, _) = q.pop().unwrap();
        assert_eq!(k, "a");
        assert_eq!(q.push("a", 3), Err(Busy::Key), "a running job still counts");
        q.done(&"a");
        q.push("a", 3).unwrap();
    }

    #[test]
    fn closing_drains_what_waits_then_stops_the_workers() {
        let q = std::sync::Arc::new(FairQueue::new(4, 4));
        q.push(1, "x").unwrap();
        let worker = {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while let Some((k, j)) = q.pop() {
                    seen.push(j);
                    q.done(&k);
                }
                seen
            })
        };
        q.push(2, "y").unwrap();
        q.close();
        assert_eq!(q.push(3, "z"), Err(Busy::Closed));
        let mut seen = worker.join().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, ["x", "y"]);
    }
}
