//! The secrets that sign callbacks.
//!
//! | Method | Path | Success |
//! |--------|------|---------|
//! | GET | `/api/callback-secrets` | 200 the valid secrets, newest first |
//! | POST | `/api/callback-secrets/rotate` | 200 the valid secrets, a new one first |
//!
//! Each callback carries one `webhook-signature` entry per valid secret, so a receiver
//! switching to a new secret keeps verifying; a replaced secret signs for 24 hours more.

use http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{Endpoint, with_state};
use crate::app::AppState;
use crate::auth::{Caller, RateClass, Role};
use crate::error::ApiResult;
use crate::jobs::callbacks::{self, SecretView};

pub(super) fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let caller = warp::ext::get::<Caller>();
    vec![
        Endpoint::get("/api/callback-secrets", "listCallbackSecrets")
            .summary(
                "conversion-jobs",
                "Lists the secrets that sign your callbacks",
            )
            .description(
                "Callbacks are signed by the Standard Webhooks scheme: `webhook-signature` \
                 holds `v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<body>` \
                 for each secret listed here; the key is the base64 after `whsec_`. The \
                 first secret is made on the first call.",
            )
            .authenticated(RateClass::Read)
            .json_response::<Vec<SecretView>>(StatusCode::OK, "The valid secrets, newest first")
            .handle(with_state(state).and(caller).then(list).map(finish)),
        Endpoint::post("/api/callback-secrets/rotate", "rotateCallbackSecret")
            .summary("conversion-jobs", "Makes a new callback signing secret")
            .description(
                "The new secret signs from now on; the one it replaces keeps signing for 24 \
                 hours, so receivers can switch without missing a callback.",
            )
            .authenticated(RateClass::Write)
            .audited("callback-secrets", "rotate")
            .json_response::<Vec<SecretView>>(
                StatusCode::OK,
                "The valid secrets, the new one first",
            )
            .handle(with_state(state).and(caller).then(rotate).map(finish)),
    ]
}

fn finish(result: ApiResult<Response>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

async fn list(state: AppState, caller: Caller) -> ApiResult<Response> {
    let identity = caller.identity()?.clone();
    identity.require_role(
        &[Role::Admin, Role::Member, Role::Anonymous],
        "read callback secrets",
    )?;
    let reader = state.clone();
    let secrets = state
        .db()
        .run(move |conn| callbacks::secrets(conn, &reader, &identity.org_id))
        .await?;
    Ok(warp::reply::json(&secrets).into_response())
}

async fn rotate(state: AppState, caller: Caller) -> ApiResult<Response> {
    let identity = caller.identity()?.clone();
    identity.require_role(&[Role::Admin, Role::Anonymous], "rotate callback secrets")?;
    let writer = state.clone();
    let org_id = identity.org_id.clone();
    let secrets = state
        .db()
        .run(move |conn| callbacks::rotate(conn, &writer, &org_id))
        .await?;
    let mut response = warp::reply::json(&secrets).into_response();
    response.extensions_mut().insert(crate::audit::AuditTarget {
        org_id: identity.org_id,
        id: secrets
            .first()
            .map(|secret| secret.id.clone())
            .unwrap_or_default(),
        actor: None,
    });
    Ok(response)
}
