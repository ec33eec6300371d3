//! File sharing on the hub's side: uploads (offer, chunks, done), the room notification, the
//! room's file list, and downloads streamed with backpressure.
//!
//! Nothing here touches the disk: data goes to the file worker ([`crate::services::files::FileStore`]) and
//! its answers come back as [`FileDone`]. Per-connection state lives in [`Hub::uploads`] and
//! [`Hub::downloads`], keyed by connection and dropped on disconnect. A download has at most one
//! read in flight, and its next chunk is read only while the connection's outbound queue is under
//! [`DOWNLOAD_LOW_WATER`]: [`Hub::pump_downloads`] (each loop turn) and each arriving chunk
//! drive it.
//!
//! In a cluster, LIST_FILES adds the room's files stored on other live nodes
//! ([`Backplane::remote_files`](crate::cluster::Backplane::remote_files)) and FILE_GET finds
//! them ([`Backplane::remote_file`](crate::cluster::Backplane::remote_file)); such a download
//! asks the backplane for each chunk instead of the store, and the chunk comes back as the same
//! [`FileDone::Chunk`], so pacing, offsets and FILE_DONE (with the indexed SHA-256) are shared.

use super::page::{fixed_cost, str_cost, take_page};
use super::{Hub, Outbox};
use crate::cluster::{FileRead, Remote};
use crate::protocol::{ErrorCode, FileEntry, ServerMsg};
use crate::services::files::{sanitize_name, FileDone, FileMeta, ReplyTo, CHUNK, DOWNLOAD_LOW_WATER};
use std::sync::Arc;

/// An upload in progress on one connection.
#[derive(Debug)]
pub(super) struct Upload {
    /// The id the file will have.
    id: u64,
    /// Sanitized display name.
    name: String,
    /// Bytes offered.
    size: u64,
    /// Bytes received so far (the next chunk's offset).
    received: u64,
    /// The digest offered.
    sha256: [u8; 32],
    /// The room the uploader was in when offering.
    room: String,
    /// When the offer or the latest chunk arrived (ms since the epoch): an upload idle for
    /// [`Services::upload_idle`](crate::services::Services) is aborted.
    last_ms: u64,
    /// FILE_DONE was handled; the worker is checking and storing.
    finishing: bool,
    /// The upload was refused midway: its remaining chunks (already on the wire) are dropped
    /// silently instead of each drawing an error. A new FILE_OFFER replaces it.
    aborted: bool,
}

/// A download in progress on one connection.
#[derive(Debug)]
pub(super) struct Download {
    /// The file.
    meta: Arc<FileMeta>,
    /// Bytes sent so far (the next chunk's offset).
    offset: u64,
    /// A read is with the worker, or a recheck with the pacer: wait for its answer.
    reading: bool,
    /// Tells this download's answers from a stale one's (keys are reused).
    tag: u64,
    /// Another node stores the file: its chunks come through the backplane, not the local
    /// store (answered the same way, as [`FileDone::Chunk`]).
    remote: bool,
}

fn refuse<O: Outbox>(out: &mut O, key: usize, text: &str) {
    out.send_error(key, ErrorCode::FileRefused, text);
}

impl Hub {
    /// FILE_OFFER: reserve space and an id, or refuse (size cap, quota, one upload at a time).
    pub(super) fn file_offer<O: Outbox>(&mut self, out: &mut O, key: usize, name: &str, size: u64, sha256: [u8; 32]) {
        let Some(store) = self.services.files.as_ref() else {
            return refuse(out, key, "file sharing is off on this server");
        };
        if self.uploads.get(&key).is_some_and(|u| !u.aborted) {
            return refuse(out, key, "an upload is already in progress on this connection");
        }
        let Some((user, room)) = self.user_and_room(key) else { return };
        match store.reserve(size, &user, self.backplane.file_id_slot()) {
            Ok(id) => {
                let upload = Upload {
                    id,
                    name: sanitize_name(name),
                    size,
                    received: 0,
                    sha256,
                    room: room.to_string(),
                    last_ms: self.now_ms,
                    finishing: false,
                    aborted: false,
                };
                self.uploads.insert(key, upload);
                out.send(key, &ServerMsg::FileAccept { id });
            }
            Err(why) => refuse(out, key, &why),
        }
    }

    /// Gives up `key`'s upload (freeing its reservation) and tells the client why.
    fn abort_upload<O: Outbox>(&mut self, out: &mut O, key: usize, why: &str) {
        if let Some(u) = self.uploads.get_mut(&key).filter(|u| !u.aborted) {
            u.aborted = true;
            if let Some(store) = self.services.files.as_ref() {
                store.abort(u.id);
            }
        }
        refuse(out, key, why);
    }

    /// True when `id` is `key`'s aborted upload: its late frames are dropped without a word.
    fn aborted_upload(&self, key: usize, id: u64) -> bool {
        self.uploads.get(&key).is_some_and(|u| u.id == id && u.aborted)
    }

    /// FILE_CHUNK from a client: the next bytes of its upload, in order.
    pub(super) fn file_chunk<O: Outbox>(&mut self, out: &mut O, key: usize, id: u64, offset: u64, data: &[u8]) {
        if self.aborted_upload(key, id) {
            return;
        }
        let Some(u) = self.uploads.get_mut(&key).filter(|u| u.id == id && !u.finishing) else {
            return refuse(out, key, &format!("no upload {id} is in progress on this connection"));
        };
        if offset != u.received {
            let why = format!("upload {id} aborted: chunk at offset {offset}, expected {}", u.received);
            return self.abort_upload(out, key, &why);
        }
        if u.received + data.len() as u64 > u.size {
            let why = format!("upload {id} aborted: more data than the {} bytes offered", u.size);
            return self.abort_upload(out, key, &why);
        }
        u.received += data.len() as u64;
        u.last_ms = self.now_ms;
        if let Some(store) = self.services.files.as_ref() {
            store.write(id, data.to_vec());
        }
    }

    /// FILE_DONE from a client: every byte is there; the worker checks the SHA-256 and stores.
    pub(super) fn file_done<O: Outbox>(&mut self, out: &mut O, key: usize, id: u64, sha256: [u8; 32]) {
        if self.aborted_upload(key, id) {
            return;
        }
        let Some(u) = self.uploads.get(&key).filter(|u| u.id == id && !u.finishing) else {
            return refuse(out, key, &format!("no upload {id} is in progress on this connection"));
        };
        if u.received != u.size {
            let why = format!("upload {id} aborted: FILE_DONE after {} of {} bytes", u.received, u.size);
            return self.abort_upload(out, key, &why);
        }
        if sha256 != u.sha256 {
            return self.abort_upload(
                out,
                key,
                &format!("upload {id} aborted: FILE_DONE's SHA-256 differs from the offer's"),
            );
        }
        let Some((from, _)) = self.user_and_room(key) else { return };
        let meta = FileMeta {
            id,
            name: u.name.clone(),
            size: u.size,
            from: from.to_string(),
            room: u.room.clone(),
            sha256,
            ts_ms: self.now_ms,
        };
        if let Some(u) = self.uploads.get_mut(&key) {
            u.finishing = true;
        }
        if let Some(store) = self.services.files.as_ref() {
            store.finish(ReplyTo { shard: self.shard, key }, meta);
        }
    }

    /// LIST_FILES: the files of the sender's room, oldest first, one page after the cursor
    /// `after` (the id of the last file of the previous page, in decimal).
    pub(super) fn list_files<O: Outbox>(&mut self, out: &mut O, key: usize, after: Option<&str>) {
        let Some((_, room)) = self.user_and_room(key) else { return };
        let Some(format) = out.reply_format(key) else { return };
        let all = self.room_files(&room);
        let start = match after {
            None => 0,
            Some(a) => match a.parse::<u64>().ok().and_then(|id| all.iter().position(|m| m.id == id)) {
                Some(i) => i + 1,
                None => {
                    let why = format!("no file {a:?} in room {room} to list after; ask again without a cursor");
                    return out.send_error(key, ErrorCode::Malformed, &why);
                }
            },
        };
        let cost =
            |m: &&Arc<FileMeta>| str_cost(format, &m.name) + str_cost(format, &m.from) + fixed_cost(format, 16, 70);
        let (files, next) = take_page(all[start..].iter(), self.services.list_page, cost, |m| m.id.to_string());
        let files = files
            .iter()
            .map(|m| FileEntry { id: m.id, name: m.name.as_str().into(), size: m.size, from: m.from.as_str().into() })
            .collect();
        out.send(key, &ServerMsg::ListFiles { room: (&*room).into(), files, next: next.map(Into::into) });
    }

    /// The files of `room` on this server and (in a cluster) on the other reachable ones,
    /// oldest first; this server's keep their storage order among themselves.
    fn room_files(&self, room: &str) -> Vec<Arc<FileMeta>> {
        let Some(store) = self.services.files.as_ref() else { return Vec::new() };
        let mut all = store.list(room);
        let mut remote = self.backplane.remote_files(room);
        if !remote.is_empty() {
            remote.sort_unstable_by_key(|m| (m.ts_ms, m.id));
            all.extend(remote);
            // Stable: equal times keep this server's files first, in their order.
            all.sort_by_key(|m| m.ts_ms);
        }
        all
    }

    /// FILE_GET: start streaming a file of the sender's room.
    pub(super) fn file_get<O: Outbox>(&mut self, out: &mut O, key: usize, id: u64) {
        let Some(store) = self.services.files.as_ref() else {
            return refuse(out, key, "file sharing is off on this server");
        };
        let Some((_, room)) = self.user_and_room(key) else { return };
        let (meta, remote) = match store.get(id) {
            Some(meta) => (meta, false),
            None => match self.backplane.remote_file(id) {
                // (A file of another room is refused below like a local one.)
                Some(f) if !f.reachable && *f.meta.room == *room => {
                    let why = format!(
                        "file {id} is stored on node {}, which is not reachable now; try again when it is back",
                        f.node
                    );
                    return refuse(out, key, &why);
                }
                Some(f) => (f.meta, true),
                None => return refuse(out, key, &format!("no file {id} in room {room}")),
            },
        };
        if *meta.room != *room {
            return refuse(out, key, &format!("no file {id} in room {room}"));
        }
        if self.downloads.contains_key(&key) {
            return refuse(out, key, "a download is already in progress on this connection");
        }
        let tag = self.next_nonce;
        self.next_nonce += 1;
        self.downloads.insert(key, Download { meta, offset: 0, reading: false, tag, remote });
        self.pump_download(out, key);
    }

    /// Moves `key`'s download on: FILE_DONE when every byte went out, else one more read when
    /// none is in flight and the connection's queue has room.
    fn pump_download<O: Outbox>(&mut self, out: &mut O, key: usize) {
        let Some(d) = self.downloads.get_mut(&key) else { return };
        // Gone or closing: its transfers are dropped when it is forgotten.
        let Some(backlog) = out.backlog(key) else { return };
        if d.reading {
            return;
        }
        let to = ReplyTo { shard: self.shard, key };
        let Some(store) = self.services.files.as_ref() else { return };
        if backlog >= DOWNLOAD_LOW_WATER {
            // Paused until the reader catches up: look again shortly.
            d.reading = store.recheck_later(to, d.tag);
            return;
        }
        if d.offset >= d.meta.size {
            let msg = ServerMsg::FileDone { id: d.meta.id, sha256: d.meta.sha256 };
            self.downloads.remove(&key);
            return out.send(key, &msg);
        }
        let len = (d.meta.size - d.offset).min(CHUNK as u64) as usize;
        let asked = if d.remote {
            let read = FileRead { to, id: d.meta.id, tag: d.tag, offset: d.offset, len };
            self.backplane.read_remote_file(read)
        } else {
            store.read(to, d.meta.id, d.tag, d.offset, len)
        };
        if asked {
            d.reading = true;
        } else {
            let remote = d.remote;
            self.downloads.remove(&key);
            refuse(
                out,
                key,
                if remote {
                    "the cluster cannot be asked for this file now; try again shortly"
                } else {
                    "the file service is not available"
                },
            );
        }
    }

    /// Called every loop turn: aborts uploads that went quiet for the idle deadline, freeing
    /// their reservations (an offer that never sends must not hold the quota).
    pub(super) fn expire_uploads<O: Outbox>(&mut self, out: &mut O) {
        if self.uploads.is_empty() {
            return;
        }
        let idle = self.services.upload_idle;
        let idle_ms = idle.as_millis() as u64;
        let now = self.now_ms;
        let quiet: Vec<(usize, u64)> = self
            .uploads
            .iter()
            .filter(|(_, u)| !u.finishing && !u.aborted && now.saturating_sub(u.last_ms) >= idle_ms)
            .map(|(&k, u)| (k, u.id))
            .collect();
        for (key, id) in quiet {
            let why = format!("upload {id} aborted: nothing received for {} s", idle.as_secs());
            self.abort_upload(out, key, &why);
        }
    }

    /// Called every loop turn: downloads waiting for their connection's queue to drain go on.
    pub(super) fn pump_downloads<O: Outbox>(&mut self, out: &mut O) {
        if self.downloads.is_empty() {
            return;
        }
        let waiting: Vec<usize> = self.downloads.iter().filter(|(_, d)| !d.reading).map(|(k, _)| *k).collect();
        for key in waiting {
            self.pump_download(out, key);
        }
    }

    /// The file worker's answers.
    pub(super) fn file_done_from_worker<O: Outbox>(&mut self, out: &mut O, done: FileDone) {
        match done {
            FileDone::Stored { to, meta } => {
                if self.uploads.get(&to.key).is_some_and(|u| u.id == meta.id) {
                    self.uploads.remove(&to.key);
                }
                self.backplane.file_stored(&meta);
                self.announce(out, to.key, &meta);
            }
            FileDone::Failed { to, id, reason } => {
                if self.uploads.get(&to.key).is_some_and(|u| u.id == id) {
                    self.uploads.remove(&to.key);
                    refuse(out, to.key, &format!("upload {id} refused: {reason}"));
                }
            }
            FileDone::Recheck { to, tag } => {
                let Some(d) = self.downloads.get_mut(&to.key).filter(|d| d.tag == tag && d.reading) else { return };
                d.reading = false;
                self.pump_download(out, to.key);
            }
            FileDone::Chunk { to, id, tag, offset, data } => {
                let Some(d) = self.downloads.get_mut(&to.key).filter(|d| d.tag == tag && d.reading) else { return };
                d.reading = false;
                match data {
                    Ok(data) if !data.is_empty() && offset == d.offset => {
                        d.offset += data.len() as u64;
                        out.send(to.key, &ServerMsg::FileChunk { id, offset, data: data.into() });
                        self.pump_download(out, to.key);
                    }
                    Ok(_) => {
                        self.downloads.remove(&to.key);
                        refuse(out, to.key, &format!("file {id} is shorter on disk than recorded"));
                    }
                    Err(why) => {
                        self.downloads.remove(&to.key);
                        refuse(out, to.key, &why);
                    }
                }
            }
        }
    }

    /// FILE_AVAILABLE to every member of the file's room on every shard, and to the uploader
    /// (wherever it is now) as the confirmation.
    fn announce<O: Outbox>(&mut self, out: &mut O, uploader: usize, meta: &FileMeta) {
        let msg = ServerMsg::FileAvailable {
            id: meta.id,
            name: meta.name.as_str().into(),
            size: meta.size,
            from: meta.from.as_str().into(),
            room: meta.room.as_str().into(),
        };
        let still_there = self.sessions.is(uploader, &meta.from);
        let except = still_there.then_some(uploader);
        match self.rooms.find(&meta.room) {
            Some(room) => self.broadcast(out, room, except, &msg, false),
            None => {
                // No local member: the other shards check for members themselves.
                let frames = out.encode_both(&msg);
                let room: Arc<str> = meta.room.as_str().into();
                self.relay.everyone(|| Remote::Room {
                    room: room.clone(),
                    frames: frames.clone(),
                    chat: false,
                    skip: None,
                });
            }
        }
        if still_there {
            out.send(uploader, &msg);
        }
    }

    /// Forgets `key`'s transfers; an unfinished upload's data and reservation are dropped.
    pub(super) fn drop_transfers(&mut self, key: usize) {
        self.downloads.remove(&key);
        if let Some(u) = self.uploads.remove(&key) {
            if !u.finishing && !u.aborted {
                if let Some(store) = self.services.files.as_ref() {
                    store.abort(u.id);
                }
            }
        }
    }
}
