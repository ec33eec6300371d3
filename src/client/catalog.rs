//! The files this session has seen (shared in the room, or listed by `/files`), so that `/get`
//! can name one by something shorter than its 16-digit id: a short id (its last digits), the
//! `#index` `/files` printed, or its name.

use std::collections::BTreeMap;

/// Fewest digits a short id has (fewer ones would clash too often).
pub const SHORT_MIN: usize = 4;

/// One known file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// The name it was shared under.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Known files by id, and the order of the last `/files` listing. Invariant: at most
/// [`Catalog::MAX`] files; `listed` holds only ids in `files`.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Every file seen, by id.
    files: BTreeMap<u64, FileInfo>,
    /// The ids of the last `/files` listing, in its order (`#1` is the first).
    listed: Vec<u64>,
}

/// Why a `/get` argument names no single file. `Display` is the message shown.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// Nothing matches.
    #[error("no file matches '{0}'; /files lists the files of your room")]
    NotFound(String),
    /// Several files match; their ids are listed.
    #[error("'{0}' matches several files ({1}); give more digits or the full id")]
    Ambiguous(String, String),
    /// `#N` past the end of the last listing.
    #[error("no file #{0} in the last /files listing")]
    NoIndex(usize),
}

impl Catalog {
    /// Bound on files remembered (the oldest ids are forgotten first).
    pub const MAX: usize = 4096;

    /// Remembers a file (from FILE_AVAILABLE or a listing).
    pub fn add(&mut self, id: u64, name: &str, size: u64) {
        self.files.insert(id, FileInfo { name: name.to_string(), size });
        while self.files.len() > Self::MAX {
            if let Some((old, _)) = self.files.pop_first() {
                self.listed.retain(|i| *i != old);
            }
        }
    }

    /// A `/files` reply: remembers its files and their order for `#index`.
    pub fn listed<'a>(&mut self, files: impl IntoIterator<Item = (u64, &'a str, u64)>) {
        self.listed.clear();
        for (id, name, size) in files {
            self.add(id, name, size);
            self.listed.push(id);
        }
        self.listed.retain(|id| self.files.contains_key(id));
    }

    /// What is known about file `id`.
    pub fn get(&self, id: u64) -> Option<&FileInfo> {
        self.files.get(&id)
    }

    /// The shortest ending of `id`'s digits, at least [`SHORT_MIN`] long, that no other known
    /// file's id ends with; the whole id when it is that short.
    pub fn short_id(&self, id: u64) -> String {
        let digits = id.to_string();
        for len in SHORT_MIN..digits.len() {
            let tail = &digits[digits.len() - len..];
            if !self.files.keys().any(|&o| o != id && o.to_string().ends_with(tail)) {
                return tail.to_string();
            }
        }
        digits
    }

    /// The id `/get` means by `what`: `#N` is the Nth file of the last listing; digits are a
    /// full id or the ending of exactly one known id (a full id not known here is passed on: the
    /// server may know it); anything else is a file name (exact, then case-insensitive, then
    /// the start of exactly one name).
    pub fn resolve(&self, what: &str) -> Result<u64, ResolveError> {
        if let Some(n) = what.strip_prefix('#').and_then(|n| n.parse::<usize>().ok()) {
            return n.checked_sub(1).and_then(|i| self.listed.get(i)).copied().ok_or(ResolveError::NoIndex(n));
        }
        if !what.is_empty() && what.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(id) = what.parse::<u64>() {
                if self.files.contains_key(&id) {
                    return Ok(id);
                }
            }
            let found: Vec<u64> = self.files.keys().copied().filter(|id| id.to_string().ends_with(what)).collect();
            return match found.as_slice() {
                [id] => Ok(*id),
                [] => what.parse::<u64>().map_err(|_| ResolveError::NotFound(what.to_string())),
                many => Err(self.ambiguous(what, many)),
            };
        }
        let by = |pred: &dyn Fn(&str) -> bool| -> Vec<u64> {
            self.files.iter().filter(|(_, f)| pred(&f.name)).map(|(id, _)| *id).collect()
        };
        let lower = what.to_lowercase();
        for found in
            [by(&|n| n == what), by(&|n| n.to_lowercase() == lower), by(&|n| n.to_lowercase().starts_with(&lower))]
        {
            match found.as_slice() {
                [] => continue,
                [id] => return Ok(*id),
                many => return Err(self.ambiguous(what, many)),
            }
        }
        Err(ResolveError::NotFound(what.to_string()))
    }

    fn ambiguous(&self, what: &str, ids: &[u64]) -> ResolveError {
        let shown: Vec<String> = ids.iter().take(5).map(|id| id.to_string()).collect();
        let more = if ids.len() > 5 { ", ..." } else { "" };
        ResolveError::Ambiguous(what.to_string(), format!("{}{more}", shown.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 1_234_567_890_123_456;
    const B: u64 = 9_876_543_210_003_456;
    const C: u64 = 5_555_555_555_557_777;

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        c.listed([(A, "notes.txt", 10), (B, "Notes-v2.txt", 20), (C, "photo.jpg", 30)]);
        c
    }

    #[test]
    fn short_ids_are_unique_endings() {
        let c = catalog();
        assert_eq!(c.short_id(C), "7777");
        // A and B both end in 3456: the shortest unique endings are longer.
        assert_eq!(c.short_id(A), "23456");
        assert_eq!(c.short_id(B), "03456");
        assert_eq!(c.short_id(42), "42", "short ids are whole");
    }

    #[test]
    fn resolves_ids_short_ids_indexes_and_names() {
        let c = catalog();
        assert_eq!(c.resolve(&A.to_string()), Ok(A));
        assert_eq!(c.resolve("7777"), Ok(C));
        assert_eq!(c.resolve("23456"), Ok(A));
        assert!(matches!(c.resolve("3456"), Err(ResolveError::Ambiguous(_, ref ids)) if ids.contains(&A.to_string())));
        assert_eq!(c.resolve("#2"), Ok(B));
        assert_eq!(c.resolve("#4"), Err(ResolveError::NoIndex(4)));
        assert_eq!(c.resolve("#0"), Err(ResolveError::NoIndex(0)));
        assert_eq!(c.resolve("notes.txt"), Ok(A));
        assert_eq!(c.resolve("NOTES-V2.TXT"), Ok(B));
        assert_eq!(c.resolve("pho"), Ok(C));
        assert!(matches!(c.resolve("note"), Err(ResolveError::Ambiguous(..))));
        assert_eq!(c.resolve("zzz"), Err(ResolveError::NotFound("zzz".into())));
        // An id this session never saw goes to the server as it is.
        assert_eq!(c.resolve("424242"), Ok(424242));
        assert_eq!(c.resolve("99999999999999999999999"), Err(ResolveError::NotFound("99999999999999999999999".into())));
    }

    #[test]
    fn bounded_and_relisted() {
        let mut c = catalog();
        c.listed([(7, "x", 1)]);
        assert_eq!(c.resolve("#1"), Ok(7));
        assert_eq!(c.get(A).map(|f| f.size), Some(10), "earlier files are still known");
        for id in 0..(Catalog::MAX as u64 + 10) {
            c.add(1_000_000 + id, "f", 1);
        }
        assert_eq!(c.files.len(), Catalog::MAX);
        assert_eq!(c.resolve("#1"), Err(ResolveError::NoIndex(1)), "forgotten files leave the listing");
    }
}
