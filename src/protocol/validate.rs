//! Naming rules for users and rooms, shared by the server (which enforces them) and clients
//! (which can check before sending).
//!
//! Names are compared as people see them: the server uses a name in Unicode NFKC form (so a
//! fullwidth `Ａｌｉｃｅ` is `Alice`), refuses invisible characters in it (zero-width joiners
//! and spaces, bidirectional overrides, fillers), and makes user names unique by their
//! confusable skeleton (Unicode TR39, case-folded), so a Cyrillic `Аlice` is taken while
//! `Alice` is online.

use std::borrow::Cow;
use thiserror::Error;
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// Longest user name, in characters.
pub const MAX_USERNAME_CHARS: usize = 20;
/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 32;
/// The room every user starts in.
pub const DEFAULT_ROOM: &str = "general";

/// Why a name was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is {0} characters; the limit is {1}")]
    TooLong(usize, usize),
    #[error("name contains a space or control character")]
    BadChar,
    #[error("name contains an invisible character (U+{0:04X})")]
    Invisible(u32),
}

/// Characters that show nothing but make a name differ: Unicode's Default_Ignorable_Code_Point
/// set (zero-width spaces and joiners, bidirectional controls, variation selectors, fillers,
/// tags) plus the blank Braille pattern, which renders as a space.
const INVISIBLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
];

/// True for a character that renders as nothing (see [`INVISIBLE`]).
pub fn is_invisible(c: char) -> bool {
    let c = c as u32;
    INVISIBLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// The name as the server uses it: in NFKC form (borrowed when it already is).
pub fn normalize_name(name: &str) -> Cow<'_, str> {
    match is_nfkc_quick(name.chars()) {
        IsNormalized::Yes => Cow::Borrowed(name),
        _ => Cow::Owned(name.nfkc().collect()),
    }
}

/// User names: 1–20 characters, none of them whitespace or control characters.
/// Case is kept as given; uniqueness is checked case-insensitively by the server.
pub fn check_username(name: &str) -> Result<(), NameError> {
    check(name, MAX_USERNAME_CHARS)
}

/// Folds a user name into `buf` (reused) into the key that makes names unique: the confusable
/// skeleton (TR39) of the name lower-cased character by character, as TR39 advises for
/// case-insensitive matching. Two names with the same key look alike (`Alice`, `ALICE`,
/// Cyrillic `Аlice`, `ａｌｉｃｅ`). Every place that compares names uses this one function
/// (`str::to_lowercase` alone treats a word-final capital sigma differently).
pub fn fold_name_into<'a>(buf: &'a mut String, name: &str) -> &'a str {
    thread_local! {
        /// The lower-cased name, reused so that a lookup does not allocate.
        static LOWER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    LOWER.with(|lower| {
        let mut lower = lower.borrow_mut();
        lower.clear();
        lower.extend(name.chars().flat_map(char::to_lowercase));
        buf.clear();
        buf.extend(unicode_security::skeleton(&lower).flat_map(char::to_lowercase));
    });
    buf
}

/// [`fold_name_into`] into a new string.
pub fn fold_name(name: &str) -> String {
    let mut buf = String::with_capacity(name.len());
    fold_name_into(&mut buf, name);
    buf
}

/// Room names: 1–32 characters, none of them whitespace or control characters
/// (`#` and other punctuation are allowed; `#general` and `general` are different rooms).
pub fn check_room(name: &str) -> Result<(), NameError> {
    check(name, MAX_ROOM_CHARS)
}

fn check(name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let n = name.chars().count();
    if n > max {
        return Err(NameError::TooLong(n, max));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NameError::BadChar);
    }
    if let Some(c) = name.chars().find(|&c| is_invisible(c)) {
        return Err(NameError::Invisible(c as u32));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(check_username("alice").is_ok());
        assert!(check_username("Zoë_42").is_ok());
        assert_eq!(check_username(""), Err(NameError::Empty));
        assert_eq!(check_username("a b"), Err(NameError::BadChar));
        assert_eq!(check_username("a\u{7}"), Err(NameError::BadChar));
        assert_eq!(check_username(&"x".repeat(21)), Err(NameError::TooLong(21, 20)));
        assert!(check_username(&"é".repeat(20)).is_ok());
    }

    #[test]
    fn invisible_characters_are_refused() {
        // Issue 16, item 5: names that look like "Alice" but are not.
        for (name, c) in [("al\u{200d}ice", 0x200D), ("Alice\u{200b}", 0x200B), ("\u{202e}ecilA", 0x202E)] {
            assert_eq!(check_username(name), Err(NameError::Invisible(c)), "{name:?}");
        }
        assert_eq!(check_username("\u{3164}"), Err(NameError::Invisible(0x3164)));
        assert_eq!(check_username("\u{2800}"), Err(NameError::Invisible(0x2800)));
        assert_eq!(check_room("lobby\u{feff}"), Err(NameError::Invisible(0xFEFF)));
        assert!(check_username("Zoë").is_ok() && check_username("李雷").is_ok());
    }

    #[test]
    fn names_are_used_in_nfkc_and_unique_by_their_skeleton() {
        assert_eq!(normalize_name("Ａｌｉｃｅ"), "Alice");
        assert!(matches!(normalize_name("Alice"), Cow::Borrowed(_)));
        // NFKC can turn a name into one with a space: the check runs on the normalized name.
        assert_eq!(check_username(&normalize_name("a\u{3000}b")), Err(NameError::BadChar));
        let key = fold_name("Alice");
        for lookalike in ["alice", "ALICE", "\u{410}lice", "\u{430}lice", "Ａｌｉｃｅ", "ａｌｉｃｅ"] {
            assert_eq!(fold_name(&normalize_name(lookalike)), key, "{lookalike:?}");
        }
        assert_ne!(fold_name("Alicia"), key);
        // The final sigma folds one way wherever it is compared.
        assert_eq!(fold_name("ΣΟΣ"), fold_name("σοσ"));
    }

    #[test]
    fn rooms() {
        assert!(check_room("tech-talk").is_ok());
        assert!(check_room(&"r".repeat(32)).is_ok());
        assert!(check_room(&"r".repeat(33)).is_err());
        assert!(check_room("two words").is_err());
    }
}
