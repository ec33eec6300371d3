//! Paging of list replies (LIST_ROOMS, LIST_USERS, LIST_FILES): a reply holds at most
//! [`ListPage::entries`] entries and about [`ListPage::bytes`] bytes of them in the asker's wire
//! format, and carries a `next` cursor when more follow. The cursor is opaque to clients (the
//! last listed room or user name, or file id); a request with `after` set to it gets the next
//! page. A client that never sends `after` gets the first page, exactly a v1.0 reply when the
//! list fits in one page.

use crate::config::ListPage;
use crate::protocol::WireFormat;

/// The first entries of `items` that fit in one page, and the cursor of the last one taken if
/// any are left. At least one entry is taken, so every page moves the listing on.
pub(super) fn take_page<T>(
    items: impl Iterator<Item = T>,
    limit: ListPage,
    cost: impl Fn(&T) -> usize,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let mut items = items.peekable();
    let mut page = Vec::new();
    let mut bytes = 0;
    while let Some(item) = items.peek() {
        let c = cost(item);
        if !page.is_empty() && (page.len() >= limit.entries || bytes + c > limit.bytes) {
            break;
        }
        bytes += c;
        page.extend(items.next());
    }
    let next = match items.peek() {
        Some(_) => page.last().map(cursor),
        None => None,
    };
    (page, next)
}

/// Bytes a string field takes in `format`: a length byte and the UTF-8 in binary; quotes, a
/// separator and the escaped text in JSON (control characters at their worst, `\u00XX`).
pub(super) fn str_cost(format: WireFormat, s: &str) -> usize {
    match format {
        WireFormat::Binary => 1 + s.len(),
        // A WebSocket frame carries the JSON text; its header is in the page's slack.
        WireFormat::Json | WireFormat::WebSocket => {
            3 + s
                .chars()
                .map(|c| match c {
                    '"' | '\\' => 2,
                    c if (c as u32) < 0x20 => 6,
                    c => c.len_utf8(),
                })
                .sum::<usize>()
        }
    }
}

/// Bytes of an entry's fixed part besides its strings: `binary` in binary, `json` in JSON
/// (keys, braces and numbers at their longest).
pub(super) fn fixed_cost(format: WireFormat, binary: usize, json: usize) -> usize {
    match format {
        WireFormat::Binary => binary,
        WireFormat::Json | WireFormat::WebSocket => json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_stop_at_the_count_or_the_bytes_and_always_take_one() {
        let limit = ListPage { entries: 3, bytes: 10 };
        let (p, next) = take_page(1..=10, limit, |_| 1, |n| n.to_string());
        assert_eq!((p, next), (vec![1, 2, 3], Some("3".to_string())));
        let (p, next) = take_page(1..=10, limit, |_| 4, |n| n.to_string());
        assert_eq!((p, next), (vec![1, 2], Some("2".to_string())));
        let (p, next) = take_page(1..=10, limit, |_| 100, |n| n.to_string());
        assert_eq!((p, next), (vec![1], Some("1".to_string())));
        let (p, next) = take_page(1..=3, limit, |_| 1, |n| n.to_string());
        assert_eq!((p, next), (vec![1, 2, 3], None), "the last page has no cursor");
    }

    #[test]
    fn json_costs_count_escapes() {
        assert_eq!(str_cost(WireFormat::Binary, "abc"), 4);
        assert_eq!(str_cost(WireFormat::Json, "a\"\u{1}"), 3 + 1 + 2 + 6);
    }
}
