//! Tab completion: command words, user names and rooms, from what the session has seen.
//!
//! [`Names`] is filled by the session (user lists, presence notices, senders, room lists) and
//! read by the line editor; [`complete`] is the pure rule, unit-tested here.

use super::commands::COMMAND_WORDS;
use std::collections::BTreeSet;

/// Names the session has seen, for completion. Invariant: each set holds at most
/// [`Names::MAX`] entries (a huge room cannot grow it without bound).
#[derive(Debug, Default, Clone)]
pub struct Names {
    /// User names from the last user list, presence notices and message senders.
    users: BTreeSet<String>,
    /// Room names from the last room list and the rooms joined.
    rooms: BTreeSet<String>,
    /// File names from shares and the last file list.
    files: BTreeSet<String>,
}

impl Names {
    /// Bound on each set.
    pub const MAX: usize = 10_000;

    /// A user came into view (a sender, a join, a list entry).
    pub fn add_user(&mut self, name: &str) {
        insert_bounded(&mut self.users, name);
    }

    /// A user left or disconnected.
    pub fn remove_user(&mut self, name: &str) {
        self.users.remove(name);
    }

    /// A room came into view.
    pub fn add_room(&mut self, name: &str) {
        insert_bounded(&mut self.rooms, name);
    }

    /// A room list replaces the rooms known.
    pub fn set_rooms<'a>(&mut self, rooms: impl IntoIterator<Item = &'a str>) {
        self.rooms.clear();
        rooms.into_iter().for_each(|r| self.add_room(r));
    }

    /// A file was shared or listed.
    pub fn add_file(&mut self, name: &str) {
        insert_bounded(&mut self.files, name);
    }
}

fn insert_bounded(set: &mut BTreeSet<String>, name: &str) {
    if !name.is_empty() && (set.len() < Names::MAX || set.contains(name)) {
        set.insert(name.to_string());
    }
}

/// What the word under the cursor should be completed from.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    Commands,
    Users,
    Rooms,
    Files,
}

/// Completes the word that ends at byte `pos` of `line`: returns where that word starts and
/// the candidates, sorted (case-insensitive prefix match). A command word gets a space after it.
///
/// - the first word, starting with `/`: commands and aliases;
/// - after `/join`: rooms; after `/msg` (and aliases) and `/admin kick`: users;
///   after `/get`: file names;
/// - anywhere else: user names (nick completion in a message).
pub fn complete(line: &str, pos: usize, names: &Names) -> (usize, Vec<String>) {
    let pos = floor_char_boundary(line, pos.min(line.len()));
    let before = &line[..pos];
    let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &before[start..];
    let earlier: Vec<&str> = before[..start].split_whitespace().collect();
    let source = match (earlier.as_slice(), word.starts_with('/')) {
        ([], true) => Source::Commands,
        ([cmd], _) => match cmd.to_ascii_lowercase().as_str() {
            "/join" | "/j" => Source::Rooms,
            "/get" | "/download" => Source::Files,
            _ => Source::Users,
        },
        _ => Source::Users,
    };
    let lower = word.to_lowercase();
    let matches = |c: &&String| c.to_lowercase().starts_with(&lower);
    let found: Vec<String> = match source {
        Source::Commands => COMMAND_WORDS.iter().map(|w| format!("/{w} ")).filter(|c| c.starts_with(&lower)).collect(),
        Source::Users => names.users.iter().filter(matches).cloned().collect(),
        Source::Rooms => names.rooms.iter().filter(matches).cloned().collect(),
        Source::Files => names.files.iter().filter(matches).filter(|f| !f.contains(' ')).cloned().collect(),
    };
    let mut found = found;
    found.sort_by_key(|c| c.to_lowercase());
    found.dedup();
    (start, found)
}

/// The largest char boundary at or before `i`.
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        let mut n = Names::default();
        for u in ["alice", "bob", "Bobby", "carol"] {
            n.add_user(u);
        }
        n.set_rooms(["general", "games", "tech"]);
        n.add_file("notes.txt");
        n.add_file("my file.pdf");
        n
    }

    fn at_end(line: &str) -> (usize, Vec<String>) {
        complete(line, line.len(), &names())
    }

    #[test]
    fn command_words() {
        let (start, c) = at_end("/jo");
        assert_eq!((start, c), (0, vec!["/join ".to_string()]));
        let (_, c) = at_end("/q");
        assert_eq!(c, ["/q ", "/quit "]);
        let (_, c) = at_end("/");
        assert!(c.contains(&"/upload ".to_string()) && c.contains(&"/download ".to_string()) && c.len() > 20);
        assert_eq!(at_end("/zz").1, Vec::<String>::new());
    }

    #[test]
    fn rooms_users_and_files_by_position() {
        assert_eq!(at_end("/join g"), (6, vec!["games".to_string(), "general".to_string()]));
        assert_eq!(at_end("/J te"), (3, vec!["tech".to_string()]));
        assert_eq!(at_end("/msg bo"), (5, vec!["bob".to_string(), "Bobby".to_string()]));
        assert_eq!(at_end("/pm C").1, ["carol"]);
        assert_eq!(at_end("/admin kick a").1, ["alice"]);
        assert_eq!(at_end("/get no").1, ["notes.txt"]);
        assert_eq!(at_end("/get my").1, Vec::<String>::new(), "names with spaces cannot be typed as one word");
        assert_eq!(at_end("thanks al"), (7, vec!["alice".to_string()]));
        assert_eq!(at_end("ca"), (0, vec!["carol".to_string()]));
        // The cursor in the middle of the line completes the word before it.
        assert_eq!(complete("/msg ca hello", 7, &names()), (5, vec!["carol".to_string()]));
        assert_eq!(complete("é", 1, &names()).0, 0, "a position inside a character is rounded down");
    }

    #[test]
    fn names_follow_presence_and_are_bounded() {
        let mut n = names();
        n.remove_user("bob");
        assert_eq!(complete("/msg bo", 7, &n).1, ["Bobby"]);
        n.set_rooms(["lobby"]);
        assert_eq!(complete("/join g", 7, &n).1, Vec::<String>::new());
        for i in 0..Names::MAX + 10 {
            n.add_user(&format!("u{i}"));
        }
        assert_eq!(n.users.len(), Names::MAX);
        n.add_user("");
        assert!(!n.users.contains(""));
    }
}
