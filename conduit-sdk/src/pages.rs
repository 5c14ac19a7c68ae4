//! Cursor pagination for list operations.
//!
//! Conduit's list endpoints take `limit` and `cursor` and answer with
//! `next_cursor` and `has_more`. [`Pages`] follows the cursors of any such
//! operation of the raw client, reading them from the response generically,
//! so list operations added by regeneration page with no new code.

use std::future::Future;

use progenitor_client::{Error as RawError, ResponseValue};
use serde::Serialize;
use serde_json::Value;

use crate::{Client, Error, ErrorKind};

impl Client {
    /// Pages through a list operation. `fetch` gets the raw client and the
    /// cursor of the page to fetch (`None` for the first) and starts the
    /// request; each page gets the client's auth, retries and errors.
    ///
    /// ```no_run
    /// # async fn demo(client: conduit_sdk::Client) -> Result<(), conduit_sdk::Error> {
    /// // The vendored spec has no list operation yet; with one, this reads
    /// // `let b = raw.list_conversations().limit(100);
    /// //  match cursor { Some(c) => b.cursor(c), None => b }.send()`.
    /// let mut pages = client.pages(|raw, cursor| {
    ///     raw.run_custom_tool().id(cursor.unwrap_or_else(|| "first".into())).send()
    /// });
    /// while let Some(page) = pages.next().await? {
    ///     println!("{:?}", page.data);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pages<'a, T, E, F, Fut>(&'a self, fetch: F) -> Pages<'a, F>
    where
        F: FnMut(&'a conduit_api_gen::Client, Option<String>) -> Fut,
        Fut: Future<Output = Result<ResponseValue<T>, RawError<E>>>,
    {
        Pages {
            client: self,
            fetch,
            cursor: None,
            done: false,
        }
    }
}

/// The pages of a list operation; see [`Client::pages`].
#[derive(Debug)]
#[must_use = "pages are fetched by calling next"]
pub struct Pages<'a, F> {
    client: &'a Client,
    fetch: F,
    cursor: Option<String>,
    done: bool,
}

impl<'a, F> Pages<'a, F> {
    /// The next page, or `None` after the last. After a failed request the
    /// next call fetches the same page again; after a malformed page (a
    /// repeated cursor, `has_more` without a cursor) paging stops.
    pub async fn next<T, E, Fut>(&mut self) -> Result<Option<T>, Error>
    where
        F: FnMut(&'a conduit_api_gen::Client, Option<String>) -> Fut,
        Fut: Future<Output = Result<ResponseValue<T>, RawError<E>>>,
        T: Serialize,
        E: Serialize,
    {
        if self.done {
            return Ok(None);
        }
        let cursor = self.cursor.clone();
        let fetch = &mut self.fetch;
        let page = self
            .client
            .call(|raw| fetch(raw, cursor))
            .await?
            .into_inner();
        let next = next_cursor(&page).inspect_err(|_| self.done = true)?;
        match next {
            Some(next) if Some(&next) == self.cursor.as_ref() => {
                self.done = true;
                return Err(Error::new(ErrorKind::Decode).with_message(format!(
                    "the server returned the same cursor {next:?} again"
                )));
            }
            Some(next) => self.cursor = Some(next),
            None => self.done = true,
        }
        Ok(Some(page))
    }

    /// The cursor of the page the next call fetches (`None` for the first).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}

/// `next_cursor` when `has_more` says there is a next page.
fn next_cursor(page: &impl Serialize) -> Result<Option<String>, Error> {
    let value = serde_json::to_value(page)
        .map_err(|e| Error::new(ErrorKind::Decode).with_message(e.to_string()))?;
    let has_more = value.get("has_more").and_then(Value::as_bool);
    let next = value
        .get("next_cursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty());
    match (has_more, next) {
        (Some(false), _) | (None, None) => Ok(None),
        (_, Some(next)) => Ok(Some(next.to_owned())),
        (Some(true), None) => Err(Error::new(ErrorKind::Decode)
            .with_message("the page says has_more but gives no next_cursor")),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;
    use serde_json::json;

    use super::*;

    fn client() -> Client {
        Client::builder().token("t").build().unwrap()
    }

    type Page = std::future::Ready<Result<ResponseValue<Value>, RawError<()>>>;

    /// A fake list operation answering `pages` in order, recording cursors.
    fn fake(
        pages: Vec<Value>,
        seen: &RefCell<Vec<Option<String>>>,
    ) -> impl FnMut(&conduit_api_gen::Client, Option<String>) -> Page + '_ {
        let mut pages = pages.into_iter();
        move |_, cursor| {
            seen.borrow_mut().push(cursor);
            let page = pages.next().expect("no fetch past the last page");
            std::future::ready(Ok(ResponseValue::new(
                page,
                StatusCode::OK,
                HeaderMap::new(),
            )))
        }
    }

    #[tokio::test]
    async fn follows_next_cursor_until_has_more_is_false() {
        let client = client();
        let seen = RefCell::new(Vec::new());
        let mut pages = client.pages(fake(
            vec![
                json!({"data": [1, 2], "next_cursor": "c1", "has_more": true}),
                json!({"data": [3], "next_cursor": "c2", "has_more": true}),
                json!({"data": [4], "next_cursor": null, "has_more": false}),
            ],
            &seen,
        ));
        let mut items = Vec::new();
        while let Some(page) = pages.next().await.unwrap() {
            items.extend(page["data"].as_array().unwrap().clone());
        }
        assert_eq!(items, vec![json!(1), json!(2), json!(3), json!(4)]);
        assert_eq!(
            *seen.borrow(),
            vec![None, Some("c1".into()), Some("c2".into())]
        );
        assert!(pages.next().await.unwrap().is_none(), "stays done");
    }

    #[tokio::test]
    async fn a_repeated_cursor_is_an_error_not_an_endless_loop() {
        let client = client();
        let seen = RefCell::new(Vec::new());
        let page = json!({"data": [], "next_cursor": "same", "has_more": true});
        let mut pages = client.pages(fake(vec![page.clone(), page], &seen));
        assert!(pages.next().await.unwrap().is_some());
        let err = pages.next().await.unwrap_err();
        assert!(
            err.is_decode() && err.to_string().contains("same cursor"),
            "{err}"
        );
        assert!(pages.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn has_more_without_a_cursor_is_an_error() {
        let client = client();
        let seen = RefCell::new(Vec::new());
        let mut pages = client.pages(fake(vec![json!({"data": [], "has_more": true})], &seen));
        assert!(pages.next().await.unwrap_err().is_decode());
        assert!(
            pages.next().await.unwrap().is_none(),
            "does not restart from page one"
        );
    }
}
