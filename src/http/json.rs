//! JSON response bodies. Like `axum::Json`, but serialized into a `Vec`, whose `io::Write` is a
//! plain copy (serde_json writes each string as three or more pieces: quotes, runs, escapes), and
//! handed to hyper as it is: `Bytes::from(Vec)` takes the buffer without copying it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Room for most answers (a token response, an introspection, a page of a few resources) before
/// the buffer has to grow.
const INITIAL_CAPACITY: usize = 1024;

#[derive(Clone, Copy, Debug, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(INITIAL_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "a response could not be written as JSON");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}
