//! Turns the rejections warp's own filters produce (a body over its limit, a malformed query
//! string, …) into problem documents. Our filters do not reject: they extract `ApiResult`s
//! and the handler decides, so this only sees warp's built-in refusals.

use std::convert::Infallible;

use warp::reject::{
    InvalidHeader, InvalidQuery, LengthRequired, MissingHeader, PayloadTooLarge,
    UnsupportedMediaType,
};
use warp::reply::Response;
use warp::{Rejection, Reply};

use crate::error::{ApiError, ErrorCode};

/// Recovers every rejection of an endpoint filter as a problem document.
pub(super) async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    Ok(to_api_error(&rejection).into_response())
}

fn to_api_error(rejection: &Rejection) -> ApiError {
    if rejection.find::<PayloadTooLarge>().is_some() {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the request body is larger than this endpoint accepts",
        )
    } else if rejection.find::<LengthRequired>().is_some() {
        ApiError::new(
            ErrorCode::BadRequest,
            "this endpoint needs a `Content-Length` header",
        )
    } else if rejection.find::<UnsupportedMediaType>().is_some() {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the body's `Content-Type` is not accepted here",
        )
    } else if let Some(invalid) = rejection.find::<InvalidQuery>() {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("the query string is invalid: {invalid}"),
        )
    } else if let Some(missing) = rejection.find::<MissingHeader>() {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("the `{}` header is required", missing.name()),
        )
    } else if let Some(invalid) = rejection.find::<InvalidHeader>() {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("the `{}` header is invalid", invalid.name()),
        )
    } else if rejection.is_not_found() {
        ApiError::new(ErrorCode::NotFound, "nothing exists at this address")
    } else {
        ApiError::internal(format!("unhandled rejection: {rejection:?}"))
    }
}
