//! Every item of a list operation, across pages, as a `Stream`.

use futures_util::Stream;
use futures_util::stream;

use crate::response::{Page, Response};
use crate::{Error, ErrorKind, Result};

/// A list builder: it can fetch the page at a cursor.
pub trait Paged: Clone + Send {
    /// The items listed.
    type Item: Send;

    /// Fetches the page at `cursor` (`None` for the first).
    fn fetch(
        self,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<Response<Page<Self::Item>>>> + Send;
}

/// Every item from the first page on, fetching the next page as the last
/// one's items run out. A cursor the server gives twice ends the stream
/// with an error instead of looping; a failed page ends it after the
/// error. Each page passes the client's gate and retries, so a 429 in the
/// middle waits and goes on.
pub(crate) fn items<B: Paged>(builder: B) -> impl Stream<Item = Result<B::Item>> + Send {
    struct State<B: Paged> {
        builder: B,
        /// Items of the page fetched, still to yield (reversed).
        pending: Vec<B::Item>,
        next: Next,
        seen: std::collections::HashSet<String>,
    }
    enum Next {
        First,
        At(String),
        /// Fails once this page's items are out.
        Fail(Error),
        Done,
    }
    let state = State {
        builder,
        pending: Vec::new(),
        next: Next::First,
        seen: Default::default(),
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if let Some(item) = state.pending.pop() {
                return Some((Ok(item), state));
            }
            let cursor = match std::mem::replace(&mut state.next, Next::Done) {
                Next::Done => return None,
                Next::Fail(e) => return Some((Err(e), state)),
                Next::First => None,
                Next::At(cursor) => Some(cursor),
            };
            let page = match state.builder.clone().fetch(cursor).await {
                Ok(page) => page.into_data(),
                Err(e) => return Some((Err(e), state)),
            };
            state.next = match (page.has_more, page.next_cursor) {
                (true, Some(next)) if !state.seen.insert(next.clone()) => {
                    Next::Fail(repeated(&next))
                }
                (true, Some(next)) => Next::At(next),
                (true, None) => Next::Fail(
                    Error::new(ErrorKind::Decode)
                        .with_message("the page says more follow but gives no next_cursor"),
                ),
                (false, _) => Next::Done,
            };
            state.pending = page.items.into_iter().rev().collect();
        }
    })
}

fn repeated(cursor: &str) -> Error {
    let shown: String = cursor.chars().take(40).collect();
    Error::new(ErrorKind::Decode).with_message(format!(
        "the server gave the cursor {shown:?} a second time; stopping rather than loop"
    ))
}
