//! Naming rules for users and rooms, shared by the server (which enforces them) and clients
//! (which can check before sending).

use thiserror::Error;

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
}

/// User names: 1–20 characters, none of them whitespace or control characters.
/// Case is kept as given; uniqueness is checked case-insensitively by the server.
pub fn check_username(name: &str) -> Result<(), NameError> {
    check(name, MAX_USERNAME_CHARS)
}

/// Folds a user name into `buf` (reused, so lookups do not allocate) for case-insensitive
/// uniqueness. Character by character, so that every place comparing names agrees:
/// `str::to_lowercase` treats a word-final capital sigma differently.
pub fn fold_name_into<'a>(buf: &'a mut String, name: &str) -> &'a str {
    buf.clear();
    buf.extend(name.chars().flat_map(char::to_lowercase));
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
    fn rooms() {
        assert!(check_room("tech-talk").is_ok());
        assert!(check_room(&"r".repeat(32)).is_ok());
        assert!(check_room(&"r".repeat(33)).is_err());
        assert!(check_room("two words").is_err());
    }
}
