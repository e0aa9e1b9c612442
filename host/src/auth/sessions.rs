//! Expiry of anonymous sessions: their organisation, every record in it and its stored
//! files go when the session's time is up.

use diesel::prelude::*;

use crate::app::AppState;
use crate::db::schema::{orgs, refresh_tokens};
use crate::db::{DbError, now};
use crate::error::ApiError;

/// Deletes expired anonymous organisations (with their stored files) and expired refresh
/// tokens; the number of organisations deleted.
pub async fn delete_expired(state: &AppState) -> Result<usize, ApiError> {
    let expired: Vec<String> = state
        .db()
        .run(|conn| {
            orgs::table
                .filter(orgs::kind.eq("anonymous"))
                .filter(orgs::expires_at.le(now()))
                .select(orgs::id)
                .load::<String>(conn)
                .map_err(DbError::from)
        })
        .await?;
    for org_id in &expired {
        // Bytes first: if this fails the record stays and the next round retries.
        state.storage().delete_org(org_id).await?;
        let org_id = org_id.clone();
        state
            .db()
            .run(move |conn| {
                diesel::delete(orgs::table.find(&org_id))
                    .execute(conn)
                    .map_err(DbError::from)
            })
            .await?;
    }
    state
        .db()
        .run(|conn| {
            diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.le(now())))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await?;
    Ok(expired.len())
}
