//! `limit` and `cursor` on the API's list routes: a query string from anyone with a token.
//!
//! Properties: parsing never panics and either refuses or gives a limit from 1 to 100; a cursor
//! the API hands out (for any time and id) reads back to the same position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::api::extract::{finish_page, paging, MAX_LIMIT};
use tessera::store::Page;

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        if let Ok(page) = paging(Some(query)) {
            assert!((1..=MAX_LIMIT).contains(&page.limit), "{query:?}");
        }
    }

    // A cursor made by the API for a row (time, id) leads back to it.
    let Some((time, id)) = data.split_first_chunk::<8>() else { return };
    let Ok(id) = std::str::from_utf8(id) else { return };
    let time = i64::from_le_bytes(*time);
    let rows = vec![(time, id.to_owned()), (0, String::new())];
    let page = Page { after_time: i64::MIN, after_id: String::new(), limit: 1 };
    let (_, cursor) = finish_page(rows, &page, |r| (r.0, r.1.as_str()));
    let cursor = cursor.expect("a next page");
    let next = paging(Some(&format!("cursor={cursor}"))).expect("the API's own cursor parses");
    assert_eq!((next.after_time, next.after_id.as_str()), (time, id));
});
