//! File sharing in the interactive client: one upload and one download at a time, driven by
//! `/send` and `/get`, the server's file messages and the upload's worker threads.

use super::requests::Req;
use super::terminal::Input;
use super::App;
use crate::client::render::{file_available, human_size, render_files};
use crate::client::transfer::{self, offer_name, progress_line, Download, Progress};
use crate::protocol::{ClientMsg, ServerMsg};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

/// What an upload's worker thread reports.
pub(super) enum UploadEvent {
    /// The file was read and hashed: offer it.
    Hashed {
        /// The file's size in bytes.
        size: u64,
        /// Its SHA-256.
        sha256: [u8; 32],
    },
    /// A chunk (or the final FILE_DONE) to send.
    Send(ClientMsg<'static>),
    /// Bytes sent so far.
    Sent(u64),
    /// Reading the file failed.
    Failed(String),
}

/// The upload in progress (one at a time).
pub(super) struct Upload {
    /// The file being sent.
    path: PathBuf,
    /// The name it is offered under.
    name: String,
    /// Size and digest, once hashed.
    hashed: Option<(u64, [u8; 32])>,
    /// The server's id, once accepted. Invariant: `Some` only after `hashed` is.
    id: Option<u64>,
    /// Tells the sending thread to stop.
    cancel: Arc<AtomicBool>,
    /// Percentages already shown.
    progress: Progress,
}

impl Upload {
    /// Stops the worker thread, if one is running.
    fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

impl App {
    /// The server's file messages: offers accepted, files listed or shared, download data.
    pub(super) fn on_file_message(&mut self, msg: &ServerMsg<'static>) {
        match msg {
            ServerMsg::FileAccept { id } => {
                self.outstanding.answered(false);
                self.upload_accepted(*id);
            }
            ServerMsg::ListFiles { files, .. } => {
                self.outstanding.answered(false);
                self.catalog.listed(files.iter().map(|f| (f.id, f.name.as_ref(), f.size)));
            }
            ServerMsg::FileAvailable { id, name, size, from, .. } => {
                self.catalog.add(*id, name, *size);
                if *from == self.me && self.upload.as_ref().is_some_and(|u| u.id == Some(*id)) {
                    self.outstanding.answered(false);
                    if let Some(u) = self.upload.take() {
                        self.out.line(&format!("↑ {}: 100%, shared as file {id}", u.name));
                    }
                }
            }
            ServerMsg::FileChunk { id, offset, data } => self.download_chunk(*id, *offset, data),
            ServerMsg::FileDone { id, sha256 } => {
                if let Some(d) = self.download.take_if(|d| d.id == *id) {
                    self.outstanding.answered(false);
                    match d.finish(sha256) {
                        Ok(line) => self.out.line(&line),
                        Err(e) => self.out.line(&format!("! download failed: {e}")),
                    }
                }
            }
            _ => {}
        }
    }

    /// `/send PATH`: hash the file on a worker thread, then offer it.
    pub(super) fn start_upload(&mut self, path: PathBuf) {
        if self.upload.is_some() {
            self.out.line("! an upload is already running; wait for it to finish");
            return;
        }
        let name = offer_name(&path);
        let cancel = Arc::new(AtomicBool::new(false));
        let tx = self.tx.clone();
        let p = path.clone();
        let spawned = thread::Builder::new().name("upload-hash".into()).spawn(move || {
            let ev = match transfer::hash_file(&p) {
                Ok((size, sha256)) => UploadEvent::Hashed { size, sha256 },
                Err(e) => UploadEvent::Failed(format!("cannot read {}: {e}", p.display())),
            };
            let _ = tx.send(Input::Upload(ev));
        });
        if let Err(e) = spawned {
            self.out.line(&format!("! cannot start the upload: {e}"));
            return;
        }
        self.out.line(&format!("↑ {name}: reading {}", path.display()));
        self.upload = Some(Upload { path, name, hashed: None, id: None, cancel, progress: Progress::default() });
    }

    /// What the upload's worker threads report: the hash (offer the file), chunks to send,
    /// progress, failure.
    pub(super) fn on_upload_event(&mut self, ev: UploadEvent) {
        match ev {
            UploadEvent::Hashed { size, sha256 } => {
                let Some(u) = self.upload.as_mut() else { return };
                u.hashed = Some((size, sha256));
                let line = format!("↑ {}: offering {} to the room", u.name, human_size(size));
                let offer = ClientMsg::FileOffer { name: u.name.clone().into(), size, sha256 };
                self.out.line(&line);
                self.send(offer);
            }
            UploadEvent::Send(msg) => {
                let done = matches!(msg, ClientMsg::FileDone { .. });
                if !self.session.as_ref().is_some_and(|s| s.send(msg)) {
                    if let Some(u) = self.upload.take() {
                        u.cancel();
                    }
                } else if done {
                    self.outstanding.push(Req::Other);
                }
            }
            UploadEvent::Sent(n) => {
                let Some(u) = self.upload.as_mut() else { return };
                let Some((size, _)) = u.hashed else { return };
                if let Some(pct) = u.progress.update(n, size).filter(|p| *p < 100) {
                    let line = progress_line("↑", &u.name, pct, n, size);
                    self.out.line(&line);
                }
            }
            UploadEvent::Failed(e) => {
                if let Some(u) = self.upload.take() {
                    u.cancel();
                }
                self.out.line(&format!("! upload failed: {e}"));
            }
        }
    }

    /// FILE_ACCEPT: start the thread that reads and sends the chunks (paced for the rate limit).
    fn upload_accepted(&mut self, id: u64) {
        let Some(u) = self.upload.as_mut().filter(|u| u.id.is_none()) else { return };
        let Some(hashed) = u.hashed else { return };
        u.id = Some(id);
        let (tx, path, cancel) = (self.tx.clone(), u.path.clone(), u.cancel.clone());
        let spawned = thread::Builder::new().name("upload".into()).spawn(move || {
            let send = |m| tx.send(Input::Upload(UploadEvent::Send(m))).is_ok();
            let progress = |n| {
                let _ = tx.send(Input::Upload(UploadEvent::Sent(n)));
            };
            if let Err(e) = transfer::send_file(&path, id, hashed, &cancel, send, progress) {
                let _ = tx.send(Input::Upload(UploadEvent::Failed(format!("reading {}: {e}", path.display()))));
            }
        });
        if let Err(e) = spawned {
            self.upload = None;
            self.out.line(&format!("! cannot start the upload: {e}"));
        }
    }

    /// The line for a file list or a share notice, with the short ids `/get` takes (the
    /// catalog already holds the files: `track` runs first).
    pub(super) fn render_file_message(&self, msg: &ServerMsg<'static>) -> Option<String> {
        Some(match msg {
            ServerMsg::ListFiles { room, files, .. } => render_files(room, files, |id| self.catalog.short_id(id)),
            ServerMsg::FileAvailable { id, name, size, from, room } => {
                file_available(*id, name, *size, from, room, Some(&self.catalog.short_id(*id)))
            }
            _ => return None,
        })
    }

    /// `/get FILE [DEST]`: find the file the user means, create the destination (inside DEST
    /// when it is a directory), then ask for it.
    pub(super) fn start_download(&mut self, file: &str, dest: Option<PathBuf>) {
        if self.download.is_some() {
            self.out.line("! a download is already running; wait for it to finish");
            return;
        }
        let id = match self.catalog.resolve(file) {
            Ok(id) => id,
            Err(e) => return self.out.line(&format!("! {e}")),
        };
        let known = self.catalog.get(id).cloned();
        let dest = match transfer::prepare_dest(dest.as_deref(), known.as_ref().map(|k| k.name.as_str()), id) {
            Ok(dest) => dest,
            Err(e) => return self.out.line(&format!("! cannot create the directory: {e}")),
        };
        let name = known.as_ref().map_or_else(|| format!("file {id}"), |k| k.name.clone());
        match Download::create(id, dest.clone(), name, known.map(|k| k.size)) {
            Ok(d) => {
                self.out.line(&format!("↓ file {id}: downloading to {}", dest.display()));
                self.download = Some(d);
                self.send(ClientMsg::FileGet { id });
            }
            Err(e) => self.out.line(&format!("! cannot create {}: {e}", dest.display())),
        }
    }

    /// FILE_CHUNK: write it to the download it belongs to, if that is the one running.
    fn download_chunk(&mut self, id: u64, offset: u64, data: &[u8]) {
        let Some(d) = self.download.as_mut().filter(|d| d.id == id) else { return };
        match d.chunk(offset, data) {
            Ok(Some(line)) => self.out.line(&line),
            Ok(None) => {}
            Err(e) => {
                if let Some(d) = self.download.take() {
                    d.discard();
                }
                self.out.line(&format!("! download failed: {e}"));
            }
        }
    }

    /// ERROR_MSG FILE_REFUSED: ends the transfer it is about (the upload, unless only a download
    /// is running or the text names a file rather than an upload).
    pub(super) fn file_refused(&mut self, text: &str) {
        let about_upload = self.upload.is_some() && (self.download.is_none() || !text.starts_with("no file"));
        if about_upload {
            if let Some(u) = self.upload.take() {
                u.cancel();
            }
        } else if let Some(d) = self.download.take() {
            d.discard();
        }
    }

    /// Abandons transfers when the connection is gone.
    pub(super) fn drop_transfers(&mut self) {
        if let Some(u) = self.upload.take() {
            u.cancel();
            self.out.line(&format!("! upload of {} abandoned", u.name));
        }
        if let Some(d) = self.download.take() {
            self.out.line(&format!("! download of {} abandoned", d.name));
            d.discard();
        }
    }
}
