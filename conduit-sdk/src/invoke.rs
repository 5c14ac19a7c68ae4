//! One call of the SDK: from a built request to the reply, or an [`Error`].
//!
//! Read top to bottom: [`Client::invoke`] sets the deadline and holds what
//! the call learns; [`Client::attempts`] prepares the request, runs the
//! attempt loop (`Pipeline::send_with_retries`: gate, send, classify,
//! decide, sleep) and reads the final response whole. The state is a local
//! passed as an argument; nothing rides on the task or the response.

use bytes::Bytes;
use conduit_api_gen::Operation;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::error::{from_reply, refused, transport_error};
use crate::learned::Learned;
use crate::middleware::Scope;
use crate::response::Reply;
use crate::{Client, Error, ErrorKind, body};

/// How much of an error response's body is read, to show with the error.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

impl Client {
    /// Sends `request` for `op` with this client's auth, gate, retries and
    /// timeouts; a 2xx comes back read whole, anything else as an [`Error`].
    pub(crate) async fn invoke(
        &self,
        op: &'static Operation,
        request: reqwest::Request,
        scope: Scope,
    ) -> Result<Reply, Error> {
        let mut learned = Learned::of(op.rust_method);
        let result = match self.total_timeout() {
            None => self.attempts(request, scope, &mut learned).await,
            Some(limit) => {
                let attempts = self.attempts(request, scope, &mut learned);
                match tokio::time::timeout(limit, attempts).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::new(ErrorKind::Timeout)
                        .with_message(format!("no response within {limit:?}"))),
                }
            }
        };
        match result {
            Ok((status, headers, body)) => Ok(Reply {
                status,
                headers,
                body,
                learned,
                redactor: self.redactor().clone(),
            }),
            Err(e) => Err(e.with_learned(&learned)),
        }
    }

    /// Prepares, sends (with retries) and reads one call's final response.
    async fn attempts(
        &self,
        mut request: reqwest::Request,
        scope: Scope,
        learned: &mut Learned,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Error> {
        let pipeline = self.pipeline();
        pipeline
            .prepare(&mut request)
            .map_err(Error::invalid_input)?;
        let http = self.http();
        let sent = pipeline
            .send_with_retries(|r| http.execute(r), request, scope, learned)
            .await;
        if let Some(why) = learned.refused {
            return Err(refused(why));
        }
        let mut response = sent.map_err(transport_error)?;
        let (max, stall) = (pipeline.max_response_bytes, pipeline.read_stall_timeout);
        let status = response.status();
        if !status.is_success() {
            // The statuses every operation documents with the `{"error"}`
            // body are read as a 2xx is (whole, within the size limit);
            // any other is shown with the start of its body.
            let body = if matches!(status.as_u16(), 400 | 401 | 403 | 404 | 429) {
                body::read_all(&mut response, max, stall)
                    .await
                    .map_err(|e| crate::error::body_error(e, status, learned))?
            } else {
                body::read_prefix(&mut response, max.min(ERROR_BODY_LIMIT), stall).await
            };
            return Err(from_reply(
                status,
                response.headers(),
                &body,
                learned,
                self.redactor(),
                self.system_time(),
            ));
        }
        let read = body::read_all(&mut response, max, stall).await;
        let headers = std::mem::take(response.headers_mut());
        let body = read.map_err(|e| crate::error::body_error(e, status, learned))?;
        Ok((status, headers, body))
    }
}
