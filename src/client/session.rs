//! The network thread: [`Client::spawn`] hands a logged-in connection to a thread that
//! alternates between sending what the [`Session`] queued and reading frames (with a short read
//! timeout), so a UI can read its input and show incoming messages at the same time.

use super::{Client, ClientError};
use crate::protocol::{ClientMsg, ServerMsg};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long the network thread waits for incoming bytes before checking its outgoing queue;
/// the worst-case delay before a typed message is sent.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

impl Client {
    /// Moves the connection to a network thread that forwards each incoming message to
    /// `on_event` and sends what the returned [`Session`] queues. The thread stops when
    /// `on_event` returns false, when the session is dropped, or after reporting
    /// [`Event::Closed`]. Messages already buffered (e.g. during login) are delivered first.
    pub fn spawn<F>(self, on_event: F) -> Session
    where
        F: FnMut(Event) -> bool + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let thread = thread::Builder::new().name("chat-net".into()).spawn(move || self.run(rx, on_event)).ok();
        Session { outgoing: Some(tx), thread }
    }

    /// [`spawn`](Self::spawn) with the events delivered on a channel.
    pub fn spawn_channel(self) -> (Session, Receiver<Event>) {
        let (tx, rx) = mpsc::channel();
        let session = self.spawn(move |ev| tx.send(ev).is_ok());
        (session, rx)
    }

    /// The network thread's loop: drain the outgoing queue, then read for up to
    /// [`POLL_INTERVAL`]; repeat.
    fn run<F: FnMut(Event) -> bool>(mut self, rx: Receiver<ClientMsg<'static>>, mut on_event: F) {
        loop {
            match self.pump(&rx) {
                Ok(Pumped::Message(msg)) => {
                    if !on_event(Event::Message(msg)) {
                        break;
                    }
                }
                Ok(Pumped::Idle) => {}
                Ok(Pumped::Dropped) => break,
                Err(e) => {
                    on_event(Event::Closed(e));
                    break;
                }
            }
        }
        self.close();
    }

    /// One round of the network thread: send everything queued, then wait briefly for a message.
    fn pump(&mut self, rx: &Receiver<ClientMsg<'static>>) -> Result<Pumped, ClientError> {
        loop {
            match rx.try_recv() {
                Ok(msg) => self.send(&msg)?,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Ok(Pumped::Dropped),
            }
        }
        Ok(match self.recv_timeout(POLL_INTERVAL)? {
            Some(msg) => Pumped::Message(msg),
            None => Pumped::Idle,
        })
    }
}

/// Outcome of one round of the network thread.
enum Pumped {
    /// A message arrived.
    Message(ServerMsg<'static>),
    /// Nothing arrived within [`POLL_INTERVAL`].
    Idle,
    /// The [`Session`] was dropped: close the connection.
    Dropped,
}

/// What the network thread reports to the UI.
#[derive(Debug)]
pub enum Event {
    /// A message from the server.
    Message(ServerMsg<'static>),
    /// The connection failed or was closed by the server; no events follow.
    Closed(ClientError),
}

/// Handle on a connection owned by a network thread (see [`Client::spawn`]). Dropping it
/// closes the connection and waits for the thread to finish (at most [`POLL_INTERVAL`]).
pub struct Session {
    /// Queue of messages for the network thread to send; `None` once closed.
    outgoing: Option<Sender<ClientMsg<'static>>>,
    /// The network thread, joined on close.
    thread: Option<JoinHandle<()>>,
}

impl Session {
    /// Queues a message for sending. Returns false if the network thread has stopped (the
    /// connection is gone; the reason was delivered as [`Event::Closed`]).
    pub fn send(&self, msg: ClientMsg<'static>) -> bool {
        self.thread.is_some() && self.outgoing.as_ref().is_some_and(|tx| tx.send(msg).is_ok())
    }

    /// Closes the connection and waits for the network thread to exit. Messages queued before
    /// the call are sent first.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.outgoing = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shutdown();
    }
}
