//! Cursor pagination of the list endpoints: `limit` and `cursor` in, `next_cursor` out.
//!
//! Every list is in a fixed order of a unique key (subscriptions by id, domains by name,
//! attempts newest first by their place on `outcomes`), and a cursor is the key of the last
//! item of a page, encoded (base64url of `<list>:<key>`, opaque to clients). The next page is
//! the items strictly after that key. Writes between two pages therefore never shift other
//! items: nothing is skipped or repeated, an item created meanwhile shows up once if it sorts
//! after the cursor, and an item deleted meanwhile just does not show up.
//!
//! A cursor names its list, so a cursor of one list given to another answers 400.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::error::ApiError;

/// Items per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 1000;

/// The page size asked for: `default` when absent, else 1 to `max`.
pub fn limit(raw: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    match raw {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(
            "limit",
            format!("limit {n} is out of range: ask for 1 to {max} items per page"),
        )),
    }
}

/// The cursor after the item whose key is `key`, in list `list`.
pub fn encode(list: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{list}:{key}"))
}

/// The key a cursor of list `list` stands for.
pub fn decode(list: &str, cursor: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::invalid(
            "cursor",
            format!(
                "not a cursor of this list; pass the `next_cursor` of the previous page of \
                 {list} unchanged, or leave `cursor` out for the first page"
            ),
        )
    };
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    text.strip_prefix(list)
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or_else(bad)
}

/// One page of `items` (sorted ascending by `key`, keys unique): the items after `after`, at
/// most `limit`, and the cursor of the next page when there are more.
pub fn page<T>(
    items: Vec<T>,
    list: &str,
    key: impl Fn(&T) -> &str,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let start = after.map_or(0, |a| items.partition_point(|i| key(i) <= a));
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let more = rest.len() > limit;
    rest.truncate(limit);
    let next = if more {
        rest.last().map(|i| encode(list, key(i)))
    } else {
        None
    };
    (rest, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_every_item_once_across_inserts_and_deletes() {
        let mut items: Vec<String> = (0..25).map(|i| format!("s{i:03}")).collect();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut round = 0;
        loop {
            let after = cursor
                .as_deref()
                .map(|c| decode("subscriptions", c).unwrap());
            let (got, next) = page(items.clone(), "subscriptions", |s| s, after.as_deref(), 7);
            seen.extend(got);
            round += 1;
            if round == 2 {
                // Meanwhile: one created before the cursor, one after, one deleted ahead.
                items.push("s0005x".into());
                items.push("s020x".into());
                items.retain(|s| s != "s022");
                items.sort();
            }
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut expected: Vec<String> = (0..25)
            .map(|i| format!("s{i:03}"))
            .filter(|s| s != "s022")
            .chain(["s020x".to_owned()])
            .collect();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn cursors_and_limits_are_checked() {
        assert!(decode("domains", &encode("subscriptions", "x")).is_err());
        assert!(decode("domains", "!!").is_err());
        assert_eq!(decode("domains", &encode("domains", "a:b")).unwrap(), "a:b");
        assert_eq!(limit(None, 100, 1000).unwrap(), 100);
        assert!(limit(Some(0), 100, 1000).is_err());
        assert!(limit(Some(1001), 100, 1000).is_err());
        let (all, next) = page(vec!["a", "b"], "l", |s| s, None, 2);
        assert_eq!(
            (all.len(), next),
            (2, None),
            "no cursor after the last page"
        );
    }
}
