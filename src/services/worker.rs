//! The worker-thread pattern every service uses: one named thread draining a channel of jobs,
//! stopped by closing the channel (it finishes what is queued) and joined on drop.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;

/// A thread that runs jobs of type `J` in order.
#[derive(Debug)]
pub struct Worker<J> {
    /// Job queue; `None` once dropping (closing it tells the thread to finish).
    tx: Option<Sender<J>>,
    /// The thread, joined on drop.
    thread: Option<JoinHandle<()>>,
}

impl<J: Send + 'static> Worker<J> {
    /// Starts thread `name` running `run` over the jobs submitted; `run` returns when the queue
    /// closes.
    pub fn spawn(name: &str, run: impl FnOnce(Receiver<J>) + Send + 'static) -> std::io::Result<Self> {
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || run(rx))?;
        Ok(Worker { tx: Some(tx), thread: Some(thread) })
    }

    /// Queues a job; false if the thread is gone.
    pub fn submit(&self, job: J) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }
}

impl<J> Drop for Worker<J> {
    /// Lets the thread finish what is queued, then waits for it.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn runs_jobs_in_order_and_finishes_the_queue_on_drop() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let w = Worker::spawn("test-worker", move |rx| rx.iter().for_each(|j: u32| s.lock().unwrap().push(j)))
            .expect("spawn");
        (0..100).for_each(|j| assert!(w.submit(j)));
        drop(w);
        assert_eq!(*seen.lock().unwrap(), (0..100).collect::<Vec<_>>());
    }
}
