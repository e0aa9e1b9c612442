//! Request ids: echoed from `X-Request-Id` when the client sent a sane one, generated
//! otherwise, and available to everything that runs while the request is served.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::HeaderValue;

/// Header that carries the request id both ways.
pub const HEADER: &str = "x-request-id";

/// Longest client-supplied id that is echoed; longer ones are replaced.
const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The identifier of one request, shown in its problem documents, its log line and the
/// `X-Request-Id` response header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// Takes the client's id if it is sane (1 to 128 characters out of letters, digits and
    /// `-_.:/+=@`), so ids from a gateway or tracing system survive; otherwise `None`.
    pub fn from_client(value: &HeaderValue) -> Option<Self> {
        let text = value.to_str().ok()?;
        let sane = !text.is_empty()
            && text.len() <= MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b));
        sane.then(|| Self(text.into()))
    }

    /// A fresh, time-ordered id (UUID v7).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string().into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a header value.
    pub fn to_header_value(&self) -> HeaderValue {
        // Both sources only ever hold visible ASCII, which is always a valid header value.
        HeaderValue::from_str(&self.0).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs `future` with `id` as the current request id.
pub async fn scope<F: Future>(id: RequestId, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// The id of the request being served by this task, if any.
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_client_ids_are_kept_and_others_refused() {
        for good in [
            "abc-123",
            "01J9ZQ4T3M8Y",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
        ] {
            let id = RequestId::from_client(&HeaderValue::from_static(good)).unwrap();
            assert_eq!(id.as_str(), good);
        }
        let long = "a".repeat(129);
        for bad in ["", "has space", "quote\"", "semi;colon", long.as_str()] {
            let value = HeaderValue::from_str(bad).unwrap();
            assert!(RequestId::from_client(&value).is_none(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_current_id_is_visible_inside_its_scope_only() {
        assert!(current().is_none());
        let id = RequestId::generate();
        let seen = scope(id.clone(), async { current() }).await;
        assert_eq!(seen, Some(id));
    }
}
