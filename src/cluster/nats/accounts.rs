//! Accounts shared by every node of a cluster (`--auth accounts`): a JetStream key-value bucket
//! `chat_accounts` (file storage, no expiry) holding each account's name and argon2id hash under
//! its hex-encoded lower-cased name. Registration is create-if-absent, so one name is one
//! account cluster-wide; any node verifies any account.
//!
//! The accounts threads ([`crate::services::accounts`]) do the hashing and call [`NatsBook`],
//! which hands each read or write to the NATS thread and waits (bounded) for its answer.

use super::ClusterStats;
use crate::services::accounts::AccountBook;
use async_nats::jetstream::kv::{CreateErrorKind, Store};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The bucket holding the cluster's accounts.
pub const ACCOUNTS_BUCKET: &str = "chat_accounts";
/// Requests from the accounts threads that may wait for the NATS thread.
pub(super) const BOOK_QUEUE: usize = 256;
/// How long an accounts thread waits for an answer (JetStream's own timeout is 5 s).
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// A read or write of the accounts bucket, with where its answer goes.
pub(super) enum BookReq {
    Create { key: String, value: Bytes, reply: SyncSender<Result<bool, String>> },
    Get { key: String, reply: SyncSender<Result<Option<Bytes>, String>> },
}

/// One stored account.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    name: String,
    hash: String,
    created_ms: i64,
}

/// The accounts threads' view of the bucket.
pub struct NatsBook {
    pub(super) tx: mpsc::Sender<BookReq>,
    pub(super) stats: Arc<ClusterStats>,
}

impl NatsBook {
    /// Hands `req` to the NATS thread and waits for what it sends to `rx`.
    fn ask<T>(&self, req: BookReq, rx: std::sync::mpsc::Receiver<Result<T, String>>) -> Result<T, String> {
        if !self.stats.connected.load(Ordering::Relaxed) {
            return Err("the cluster is unreachable".into());
        }
        self.tx.try_send(req).map_err(|_| "the cluster's accounts queue is full".to_string())?;
        rx.recv_timeout(ANSWER_WAIT).map_err(|_| "the cluster did not answer in time".to_string())?
    }
}

impl AccountBook for NatsBook {
    fn create(&self, folded: &str, name: &str, hash: &str, created_ms: i64) -> Result<bool, String> {
        let stored = Stored { name: name.into(), hash: hash.into(), created_ms };
        let value = serde_json::to_vec(&stored).map_err(|e| e.to_string())?.into();
        let (reply, rx) = sync_channel(1);
        self.ask(BookReq::Create { key: super::wire::hex(folded), value, reply }, rx)
    }

    fn hash(&self, folded: &str) -> Result<Option<String>, String> {
        let (reply, rx) = sync_channel(1);
        let Some(value) = self.ask(BookReq::Get { key: super::wire::hex(folded), reply }, rx)? else {
            return Ok(None);
        };
        let stored: Stored = serde_json::from_slice(&value).map_err(|e| format!("a malformed account: {e}"))?;
        Ok(Some(stored.hash))
    }
}

/// Answers the accounts threads' requests, each in its own task.
pub(super) async fn serve(kv: Store, mut rx: mpsc::Receiver<BookReq>) {
    while let Some(req) = rx.recv().await {
        let kv = kv.clone();
        tokio::spawn(async move {
            match req {
                BookReq::Create { key, value, reply } => {
                    let created = match kv.create(key, value).await {
                        Ok(_) => Ok(true),
                        Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(false),
                        Err(e) => Err(e.to_string()),
                    };
                    let _ = reply.send(created);
                }
                BookReq::Get { key, reply } => {
                    let _ = reply.send(kv.get(key).await.map_err(|e| e.to_string()));
                }
            }
        });
    }
}
