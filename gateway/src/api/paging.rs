//! Cursor pagination of registry lists (`/cameras`, `/units`): `limit` (1…1000, default 1000)
//! and `after` (the last id of the previous page); the answer's `next` is the cursor of the
//! following page, `null` on the last.

use super::error::ApiError;
use super::events::MAX_LIMIT;

/// One page of `items` (ordered by id): those after `after`, at most `limit`, and the cursor
/// of the next page.
pub fn page<T>(
    items: impl IntoIterator<Item = T>,
    id: impl Fn(&T) -> &str,
    after: Option<&str>,
    limit: Option<usize>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = match limit {
        None => MAX_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!("`limit` must be an integer from 1 to {MAX_LIMIT}"),
            ))
        }
    };
    let mut rest = items
        .into_iter()
        .filter(|t| after.is_none_or(|a| id(t) > a));
    let page: Vec<T> = rest.by_ref().take(limit).collect();
    let next = match rest.next() {
        Some(_) => page.last().map(|t| id(t).to_string()),
        None => None,
    };
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_their_cursor_to_the_end() {
        let ids = ["a", "b", "c", "d", "e"];
        let (p, next) = page(ids, |s| s, None, Some(2)).unwrap();
        assert_eq!((p, next.as_deref()), (vec!["a", "b"], Some("b")));
        let (p, next) = page(ids, |s| s, Some("b"), Some(2)).unwrap();
        assert_eq!((p, next.as_deref()), (vec!["c", "d"], Some("d")));
        let (p, next) = page(ids, |s| s, Some("d"), Some(2)).unwrap();
        assert_eq!((p, next), (vec!["e"], None));
        let (p, next) = page(ids, |s| s, None, None).unwrap();
        assert_eq!((p.len(), next), (5, None));
        assert!(page(ids, |s| s, None, Some(0)).is_err());
        assert!(page(ids, |s| s, None, Some(MAX_LIMIT + 1)).is_err());
    }
}
