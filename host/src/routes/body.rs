//! Request body extractors that never reject: a bad body becomes an [`ApiError`] the
//! handler returns, so it is answered by the endpoint it was sent to.

use bytes::{Buf, BytesMut};
use futures_util::{Stream, StreamExt};
use http::HeaderValue;
use serde::de::DeserializeOwned;
use warp::Filter;

use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};

/// Extracts a JSON body of at most `limit` bytes as `T`.
///
/// The body is read as a stream and abandoned as soon as it passes `limit` (413), so an
/// oversized body is never held whole in memory, with or without `Content-Length`. A body
/// with a `Content-Type` other than JSON answers 415; one that does not parse, or lacks a
/// field, answers 400 with the line, column and field path of the problem.
pub fn json<T: DeserializeOwned + Send + 'static>(
    limit: u64,
) -> impl Filter<Extract = (ApiResult<T>,), Error = warp::Rejection> + Clone {
    warp::header::optional::<HeaderValue>("content-type")
        .and(warp::body::stream())
        .then(move |content_type: Option<HeaderValue>, body| async move {
            if let Some(content_type) = content_type {
                check_json_content_type(&content_type)?;
            }
            let bytes = read_capped(body, limit).await?;
            parse_json(&bytes)
        })
}

fn check_json_content_type(value: &HeaderValue) -> ApiResult<()> {
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    let essence = essence.to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("the body must be JSON (`Content-Type: application/json`), not `{essence}`"),
        ))
    }
}

async fn read_capped<S, B>(body: S, limit: u64) -> ApiResult<BytesMut>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut bytes = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| {
            ApiError::new(ErrorCode::BadRequest, "the request body could not be read")
                .with_source(error)
        })?;
        if (bytes.len() + chunk.remaining()) as u64 > limit {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the JSON body is larger than {limit} bytes"),
            ));
        }
        bytes.extend_from_slice(chunk.chunk());
    }
    Ok(bytes)
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "the request body is empty; send a JSON document",
        ));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let detail = format!("the body is not valid JSON for this endpoint: {inner}");
        let api_error = ApiError::new(ErrorCode::InvalidJson, detail);
        if inner.is_data() && path != "." {
            api_error.with_field_errors(vec![FieldError {
                path: json_pointer(&path),
                message: inner.to_string(),
            }])
        } else {
            api_error
        }
    })
}

/// Turns serde_path_to_error's `a.b[0].c` into the JSON pointer `/a/b/0/c`.
fn json_pointer(path: &str) -> String {
    let mut pointer = String::new();
    for segment in path.split('.') {
        let mut rest = segment;
        if let Some(index) = rest.find('[') {
            pointer.push('/');
            pointer.push_str(&rest[..index].replace('~', "~0").replace('/', "~1"));
            rest = &rest[index..];
            for part in rest.split(['[', ']']).filter(|part| !part.is_empty()) {
                pointer.push('/');
                pointer.push_str(part);
            }
        } else {
            pointer.push('/');
            pointer.push_str(&rest.replace('~', "~0").replace('/', "~1"));
        }
    }
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields are read by serde only")]
    struct Login {
        email: String,
        tries: Vec<u8>,
    }

    async fn extract(request: warp::test::RequestBuilder) -> ApiResult<Login> {
        request.filter(&json::<Login>(64)).await.unwrap()
    }

    #[tokio::test]
    async fn a_well_formed_body_is_extracted() {
        let body = extract(
            warp::test::request()
                .header("content-type", "application/json")
                .body(r#"{"email":"a@b","tries":[1]}"#),
        )
        .await;
        assert!(body.is_ok(), "{body:?}");
    }

    #[tokio::test]
    async fn malformed_json_says_where() {
        let error = extract(warp::test::request().body(r#"{"email": "#))
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidJson);
        assert!(
            error.detail().contains("line 1 column"),
            "{}",
            error.detail()
        );
    }

    #[tokio::test]
    async fn a_wrong_field_is_named_by_json_pointer() {
        let error = extract(warp::test::request().body(r#"{"email":"a","tries":[1,"x"]}"#))
            .await
            .unwrap_err();
        let problem = error.to_problem();
        assert_eq!(problem.errors[0].path, "/tries/1");
        let error = extract(warp::test::request().body(r#"{"tries":[]}"#))
            .await
            .unwrap_err();
        assert!(
            error.detail().contains("missing field `email`"),
            "{}",
            error.detail()
        );
    }

    #[tokio::test]
    async fn oversized_and_non_json_bodies_are_refused() {
        let error = extract(warp::test::request().body("x".repeat(65)))
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::PayloadTooLarge);
        let error = extract(
            warp::test::request()
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await
        .unwrap_err();
        assert_eq!(error.code(), ErrorCode::UnsupportedMediaType);
        let error = extract(warp::test::request()).await.unwrap_err();
        assert!(error.detail().contains("empty"), "{}", error.detail());
    }

    #[test]
    fn paths_become_json_pointers() {
        assert_eq!(
            json_pointer("conversions[0].options.quality"),
            "/conversions/0/options/quality"
        );
        assert_eq!(json_pointer("a/b"), "/a~1b");
    }
}
