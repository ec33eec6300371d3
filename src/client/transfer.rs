//! File transfers for the terminal client: hashing and chunking an upload, writing and checking
//! a download, and the progress lines both print.
//!
//! Uploads are paced: the server's rate limit counts frames (100 a second, bursts of 200 by
//! default), so after [`UPLOAD_BURST`] chunks the sender waits [`UPLOAD_PACE`] between chunks.

use crate::client::render::human_size;
use crate::protocol::ClientMsg;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Bytes per uploaded chunk (fits the server's default 64 KiB frame in both formats).
pub const CHUNK: usize = crate::services::files::CHUNK;
/// Chunks sent back to back before pacing starts.
pub const UPLOAD_BURST: usize = 100;
/// Wait between chunks after the burst: about 80 chunks a second, under the default rate limit.
pub const UPLOAD_PACE: Duration = Duration::from_millis(12);

/// Size and SHA-256 of the file at `path`, read in chunks.
pub fn hash_file(path: &Path) -> io::Result<(u64, [u8; 32])> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finalize().into()))
}

/// The name an upload is offered under: the file name of `path` (the server sanitizes it again).
pub fn offer_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".to_string())
}

/// Reports progress every 10%: the percentages already announced.
#[derive(Debug, Default)]
pub struct Progress {
    /// The next percentage (a multiple of 10) that will be announced.
    next: u64,
}

impl Progress {
    /// The percentage to announce now that `done` of `total` bytes moved, if a new 10% step
    /// was reached (100 only once everything moved).
    pub fn update(&mut self, done: u64, total: u64) -> Option<u64> {
        let pct = (done.min(total) * 100).checked_div(total).unwrap_or(100);
        if pct < self.next.max(10) || self.next > 100 {
            return None;
        }
        self.next = pct / 10 * 10 + 10;
        Some(pct / 10 * 10)
    }
}

/// `↑ report.pdf: 50% (8.0 MiB of 16.0 MiB)`; `arrow` is `↑` for uploads, `↓` for downloads.
pub fn progress_line(arrow: &str, name: &str, pct: u64, done: u64, total: u64) -> String {
    format!("{arrow} {name}: {pct}% ({} of {})", human_size(done), human_size(total))
}

/// Sends the chunks of upload `id` read from `path`, then FILE_DONE, through `send`, calling
/// `progress` with the bytes sent after each chunk. Stops early (Ok) when `cancel` is set or
/// `send` returns false. The file must still have the `size` bytes that were hashed.
pub fn send_file(
    path: &Path,
    id: u64,
    (size, sha256): (u64, [u8; 32]),
    cancel: &AtomicBool,
    mut send: impl FnMut(ClientMsg<'static>) -> bool,
    mut progress: impl FnMut(u64),
) -> io::Result<()> {
    let mut f = File::open(path)?;
    let mut offset = 0u64;
    let mut chunks = 0usize;
    while offset < size {
        if cancel.load(Ordering::Relaxed) {
            return Ok(());
        }
        let want = (size - offset).min(CHUNK as u64) as usize;
        let mut data = vec![0u8; want];
        f.read_exact(&mut data)?;
        if !send(ClientMsg::FileChunk { id, offset, data: data.into() }) {
            return Ok(());
        }
        offset += want as u64;
        chunks += 1;
        progress(offset);
        if chunks >= UPLOAD_BURST {
            std::thread::sleep(UPLOAD_PACE);
        }
    }
    if !cancel.load(Ordering::Relaxed) {
        send(ClientMsg::FileDone { id, sha256 });
    }
    Ok(())
}

/// Where `/get` saves file `id`. `dest` as typed: a file path is used as it is; a directory
/// (`is_dir`, or written with a trailing `/`) gets the file inside it; none means the working
/// directory. Inside a directory the file takes its sanitized name (or `file-<id>`) and never
/// replaces an existing file (`name.1`, `name.2`, ...).
pub fn download_dest(
    dest: Option<&Path>,
    name: Option<&str>,
    id: u64,
    is_dir: impl Fn(&Path) -> bool,
    exists: impl Fn(&Path) -> bool,
) -> PathBuf {
    let dir = match dest {
        None => Path::new(""),
        Some(d) if is_dir(d) || names_a_directory(d) => d,
        Some(file) => return file.to_path_buf(),
    };
    let base = match name {
        Some(n) => crate::services::files::sanitize_name(n),
        None => format!("file-{id}"),
    };
    let mut path = dir.join(&base);
    let mut n = 1;
    while exists(&path) {
        path = dir.join(format!("{base}.{n}"));
        n += 1;
    }
    path
}

/// True for a path typed with a trailing separator (`downloads/`): meant as a directory.
pub fn names_a_directory(p: &Path) -> bool {
    let s = p.as_os_str().to_string_lossy();
    s.ends_with('/') || s.ends_with(std::path::MAIN_SEPARATOR)
}

/// [`download_dest`] on the real file system; a directory typed with a trailing `/` that does
/// not exist yet is created.
pub fn prepare_dest(dest: Option<&Path>, name: Option<&str>, id: u64) -> io::Result<PathBuf> {
    if let Some(d) = dest.filter(|d| names_a_directory(d) && !d.is_dir()) {
        std::fs::create_dir_all(d)?;
    }
    Ok(download_dest(dest, name, id, |p| p.is_dir(), |p| p.exists()))
}

/// Why a download failed. `Display` is the text shown after `! download failed: `.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The server sent a chunk out of order.
    #[error("chunk at offset {got}, expected {expected}")]
    Offset {
        /// The chunk's offset.
        got: u64,
        /// The bytes received so far, where the next chunk must start.
        expected: u64,
    },
    /// Writing the destination file failed.
    #[error("cannot write {}: {source}", dest.display())]
    Write {
        /// The file being written.
        dest: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
    /// The file received does not have the digest the server announced; it was deleted.
    #[error("file {id} failed its SHA-256 check; deleted {}", dest.display())]
    Digest {
        /// The file's id.
        id: u64,
        /// Where it was being saved.
        dest: PathBuf,
    },
}

/// A download being written.
#[derive(Debug)]
pub struct Download {
    /// The file's id.
    pub id: u64,
    /// Where it is saved.
    pub dest: PathBuf,
    /// Its name, for progress lines.
    pub name: String,
    /// Its size if known (from /files or the notification), for percentages.
    pub total: Option<u64>,
    /// Bytes written so far.
    pub received: u64,
    file: File,
    hasher: Sha256,
    progress: Progress,
}

impl Download {
    /// Creates `dest` (refusing to overwrite an existing file).
    pub fn create(id: u64, dest: PathBuf, name: String, total: Option<u64>) -> io::Result<Download> {
        let file = File::options().write(true).create_new(true).open(&dest)?;
        Ok(Download { id, dest, name, total, received: 0, file, hasher: Sha256::new(), progress: Progress::default() })
    }

    /// Writes the chunk at `offset`; returns a progress line when one is due.
    pub fn chunk(&mut self, offset: u64, data: &[u8]) -> Result<Option<String>, TransferError> {
        if offset != self.received {
            return Err(TransferError::Offset { got: offset, expected: self.received });
        }
        self.file.write_all(data).map_err(|source| self.write_error(source))?;
        self.hasher.update(data);
        self.received += data.len() as u64;
        let Some(total) = self.total else { return Ok(None) };
        Ok(self
            .progress
            .update(self.received, total)
            .filter(|p| *p < 100)
            .map(|p| progress_line("↓", &self.name, p, self.received, total)))
    }

    /// The server's FILE_DONE: checks the digest. On a mismatch the file is deleted.
    pub fn finish(mut self, sha256: &[u8; 32]) -> Result<String, TransferError> {
        let got: [u8; 32] = self.hasher.clone().finalize().into();
        let flushed = self.file.flush().and_then(|()| self.file.sync_all());
        if got != *sha256 {
            let why = TransferError::Digest { id: self.id, dest: self.dest.clone() };
            self.discard();
            return Err(why);
        }
        flushed.map_err(|source| self.write_error(source))?;
        Ok(format!(
            "↓ {}: 100%, saved to {} ({}, SHA-256 verified)",
            self.name,
            self.dest.display(),
            human_size(self.received)
        ))
    }

    fn write_error(&self, source: io::Error) -> TransferError {
        TransferError::Write { dest: self.dest.clone(), source }
    }

    /// Gives up: deletes the partial file.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.dest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_every_ten_percent() {
        let mut p = Progress::default();
        let seen: Vec<u64> = (0..=100).filter_map(|d| p.update(d, 100)).collect();
        assert_eq!(seen, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
        let mut p = Progress::default();
        assert_eq!(p.update(35, 100), Some(30));
        assert_eq!(p.update(36, 100), None);
        assert_eq!(p.update(100, 100), Some(100));
        assert_eq!(p.update(100, 100), None);
        assert_eq!(Progress::default().update(0, 0), Some(100));
    }

    #[test]
    fn progress_lines() {
        assert_eq!(progress_line("↑", "a.bin", 50, 512, 1024), "↑ a.bin: 50% (512 B of 1.0 KiB)");
    }

    #[test]
    fn error_texts_are_the_lines_shown() {
        assert_eq!(TransferError::Offset { got: 5, expected: 3 }.to_string(), "chunk at offset 5, expected 3");
        let digest = TransferError::Digest { id: 6, dest: "a.bin".into() };
        assert_eq!(digest.to_string(), "file 6 failed its SHA-256 check; deleted a.bin");
        let write = TransferError::Write { dest: "a.bin".into(), source: io::ErrorKind::PermissionDenied.into() };
        assert!(write.to_string().starts_with("cannot write a.bin: "), "{write}");
    }

    #[test]
    fn destinations_never_overwrite() {
        let none = |_: &Path| false;
        let taken = |p: &Path| p == Path::new("passwd") || p == Path::new("passwd.1");
        assert_eq!(download_dest(None, Some("../../etc/passwd"), 1, none, taken), PathBuf::from("passwd.2"));
        assert_eq!(download_dest(None, None, 9, none, none), PathBuf::from("file-9"));
        assert_eq!(download_dest(None, Some("ok.txt"), 9, none, none), PathBuf::from("ok.txt"));
    }

    #[test]
    fn destinations_in_directories() {
        let none = |_: &Path| false;
        let is_dl = |p: &Path| p == Path::new("dl");
        let dest =
            |d: &str, dir: &dyn Fn(&Path) -> bool| download_dest(Some(Path::new(d)), Some("a.txt"), 3, dir, none);
        assert_eq!(dest("dl", &is_dl), PathBuf::from("dl/a.txt"), "an existing directory");
        assert_eq!(dest("new/", &none), PathBuf::from("new/a.txt"), "a trailing slash means a directory");
        assert_eq!(dest("dl/b.bin", &is_dl), PathBuf::from("dl/b.bin"), "a file path is used as given");
        let taken = |p: &Path| p == Path::new("dl/a.txt");
        assert_eq!(download_dest(Some(Path::new("dl")), Some("a.txt"), 3, is_dl, taken), PathBuf::from("dl/a.txt.1"));
        let evil = download_dest(Some(Path::new("dl")), Some("../../x"), 3, is_dl, none);
        assert_eq!(evil, PathBuf::from("dl/x"), "the name cannot climb out of the directory");
    }

    #[test]
    fn prepared_destinations_on_disk() {
        let dir = std::env::temp_dir().join(format!("chatproto-dest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = prepare_dest(Some(&dir), Some("a.txt"), 1).unwrap();
        assert_eq!(p, dir.join("a.txt"));
        let sub = format!("{}/sub/", dir.display());
        let p = prepare_dest(Some(Path::new(&sub)), Some("b.txt"), 2).unwrap();
        assert!(dir.join("sub").is_dir() && p == dir.join("sub").join("b.txt"), "{}", p.display());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn upload_and_download_round_trip_through_files() {
        let dir = std::env::temp_dir().join(format!("chatproto-transfer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("src.bin");
        let content: Vec<u8> = (0..(2 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &content).unwrap();
        let (size, sha) = hash_file(&src).unwrap();
        assert_eq!(size, content.len() as u64);
        let mut sent = Vec::new();
        let mut last = 0;
        send_file(
            &src,
            5,
            (size, sha),
            &AtomicBool::new(false),
            |m| {
                sent.push(m);
                true
            },
            |n| last = n,
        )
        .unwrap();
        assert_eq!(last, size);
        assert_eq!(sent.len(), 4, "three chunks and FILE_DONE");
        assert_eq!(sent[3], ClientMsg::FileDone { id: 5, sha256: sha });
        let dest = dir.join("dest.bin");
        let _ = std::fs::remove_file(&dest);
        let mut d = Download::create(5, dest.clone(), "src.bin".into(), Some(size)).unwrap();
        for m in &sent[..3] {
            let ClientMsg::FileChunk { offset, data, .. } = m else { panic!("{m:?}") };
            d.chunk(*offset, data).unwrap();
        }
        assert!(d.finish(&sha).unwrap().contains("SHA-256 verified"));
        assert_eq!(std::fs::read(&dest).unwrap(), content);
        // A wrong digest deletes the file.
        let bad = dir.join("bad.bin");
        let _ = std::fs::remove_file(&bad);
        let mut d = Download::create(6, bad.clone(), "bad".into(), None).unwrap();
        d.chunk(0, b"abc").unwrap();
        assert!(matches!(d.chunk(0, b"x"), Err(TransferError::Offset { got: 0, expected: 3 })));
        assert!(d.finish(&[0; 32]).is_err());
        assert!(!bad.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
