//! Callbacks: the job JSON POSTed to its `callback_url`, signed by the Standard Webhooks
//! scheme.
//!
//! A status change writes a `callback_deliveries` row in the same transaction (so none is
//! lost or sent for a change that rolled back). A sender loop on each server claims due
//! rows with a lease, one job's messages in order, and POSTs them with the headers
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">` — one signature per valid secret of the organisation, so a
//! receiver keeps verifying while secrets rotate. A failed delivery is retried with
//! exponential back-off and jitter up to `jobs.callback_attempts` times; a 410 Gone stops
//! it for good. Every attempt is kept on the row and shown in the job's `callbacks`.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt as _;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::app::AppState;
use crate::db::schema::{callback_deliveries, jobs, webhook_secrets};
use crate::db::{DbConnection, DbError, now};
use crate::error::{ApiError, ApiResult, ErrorCode};

/// How long a replaced secret keeps signing, so receivers can switch over.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// A row of `callback_deliveries`.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = callback_deliveries)]
pub struct DeliveryRow {
    pub id: String,
    pub job_id: String,
    pub org_id: String,
    pub url: String,
    pub event: String,
    pub payload: String,
    pub state: String,
    pub attempts: i32,
    pub attempt_log: String,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

fn time(value: NaiveDateTime) -> Value {
    Value::String(
        value
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

impl DeliveryRow {
    /// As the job's `callbacks[]` shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "event": self.event,
            "url": self.url,
            "state": self.state,
            "attempts": serde_json::from_str::<Value>(&self.attempt_log).unwrap_or(json!([])),
            "next_attempt_at": self.next_attempt_at.map(time),
            "created_at": time(self.created_at),
        })
    }
}

/// The deliveries of several jobs, oldest first.
pub fn for_jobs(
    conn: &mut DbConnection,
    job_ids: &[&str],
) -> QueryResult<BTreeMap<String, Vec<DeliveryRow>>> {
    let mut by_job: BTreeMap<String, Vec<DeliveryRow>> = BTreeMap::new();
    for row in callback_deliveries::table
        .filter(callback_deliveries::job_id.eq_any(job_ids))
        .order((
            callback_deliveries::created_at.asc(),
            callback_deliveries::id.asc(),
        ))
        .select(DeliveryRow::as_select())
        .load(conn)?
    {
        by_job.entry(row.job_id.clone()).or_default().push(row);
    }
    Ok(by_job)
}

/// Writes the callback `event` of `job_id` (when it has a `callback_url`): the job as it
/// is now, in a Standard Webhooks envelope.
pub fn record(
    conn: &mut DbConnection,
    state: &AppState,
    job_id: &str,
    event: &str,
) -> ApiResult<()> {
    let Some(job) = super::load_any(conn, job_id).map_err(DbError::from)? else {
        return Ok(());
    };
    let Some(url) = job.row.callback_url.clone() else {
        return Ok(());
    };
    let time = now();
    let payload = json!({
        "type": event,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": super::to_json(&job, Some(state)),
    });
    insert(
        conn,
        &job.row.id,
        &job.row.org_id,
        &url,
        event,
        &payload.to_string(),
        time,
    )?;
    state.jobs().wake_callbacks();
    Ok(())
}

fn insert(
    conn: &mut DbConnection,
    job_id: &str,
    org_id: &str,
    url: &str,
    event: &str,
    payload: &str,
    time: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(callback_deliveries::table)
        .values(DeliveryRow {
            id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
            job_id: job_id.to_owned(),
            org_id: org_id.to_owned(),
            url: url.to_owned(),
            event: event.to_owned(),
            payload: payload.to_owned(),
            state: "pending".into(),
            attempts: 0,
            attempt_log: "[]".into(),
            next_attempt_at: Some(time),
            lease_owner: None,
            lease_expires_at: None,
            created_at: time,
            updated_at: time,
        })
        .execute(conn)?;
    Ok(())
}

/// Sends the job's last callback message again, as a new message (404 when it has none).
pub fn replay(conn: &mut DbConnection, state: &AppState, job_id: &str) -> ApiResult<()> {
    let last: Option<DeliveryRow> = callback_deliveries::table
        .filter(callback_deliveries::job_id.eq(job_id))
        .order((
            callback_deliveries::created_at.desc(),
            callback_deliveries::id.desc(),
        ))
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)?;
    let Some(last) = last else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "the job has sent no callback yet; it needs a `callback_url` and a status change",
        ));
    };
    let url: Option<String> = jobs::table
        .find(job_id)
        .select(jobs::callback_url)
        .first(conn)
        .map_err(DbError::from)?;
    insert(
        conn,
        job_id,
        &last.org_id,
        url.as_deref().unwrap_or(&last.url),
        &last.event,
        &last.payload,
        now(),
    )?;
    state.jobs().wake_callbacks();
    Ok(())
}

/// A secret as given to clients: `whsec_` and the base64 of its key.
fn new_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// A signing secret of an organisation.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct SecretView {
    /// Its id.
    pub id: String,
    /// `whsec_…`: the HMAC key is the base64 after the prefix.
    pub secret: String,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it stops signing (set once a newer one replaced it).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The valid secrets of `org_id`, newest first; makes the first one if there is none.
pub fn secrets(
    conn: &mut DbConnection,
    state: &AppState,
    org_id: &str,
) -> ApiResult<Vec<SecretView>> {
    let time = now();
    let rows: Vec<(String, String, NaiveDateTime, Option<NaiveDateTime>)> = webhook_secrets::table
        .filter(webhook_secrets::org_id.eq(org_id))
        .filter(
            webhook_secrets::expires_at
                .is_null()
                .or(webhook_secrets::expires_at.gt(time)),
        )
        .order(webhook_secrets::created_at.desc())
        .select((
            webhook_secrets::id,
            webhook_secrets::secret,
            webhook_secrets::created_at,
            webhook_secrets::expires_at,
        ))
        .load(conn)
        .map_err(DbError::from)?;
    if rows.is_empty() {
        return rotate(conn, state, org_id);
    }
    rows.into_iter()
        .map(|(id, sealed, created_at, expires_at)| {
            Ok(SecretView {
                secret: String::from_utf8(
                    state
                        .sealer()
                        .open(&sealed)
                        .map_err(|error| ApiError::internal(error.to_string()))?,
                )
                .map_err(ApiError::internal)?,
                id,
                created_at: created_at.and_utc(),
                expires_at: expires_at.map(|time| time.and_utc()),
            })
        })
        .collect()
}

/// Makes a new secret for `org_id`; the ones it replaces keep signing for
/// [`ROTATION_OVERLAP`]. Returns the valid secrets, newest first.
pub fn rotate(
    conn: &mut DbConnection,
    state: &AppState,
    org_id: &str,
) -> ApiResult<Vec<SecretView>> {
    crate::db::write_transaction(conn, |conn| {
        let time = now();
        let overlap = chrono::Duration::from_std(ROTATION_OVERLAP).unwrap_or_default();
        diesel::update(
            webhook_secrets::table
                .filter(webhook_secrets::org_id.eq(org_id))
                .filter(webhook_secrets::expires_at.is_null()),
        )
        .set(webhook_secrets::expires_at.eq(time + overlap))
        .execute(conn)
        .map_err(DbError::from)?;
        let secret = new_secret();
        diesel::insert_into(webhook_secrets::table)
            .values((
                webhook_secrets::id.eq(uuid::Uuid::now_v7().to_string()),
                webhook_secrets::org_id.eq(org_id),
                webhook_secrets::secret.eq(state.sealer().seal(secret.as_bytes())),
                webhook_secrets::created_at.eq(time),
            ))
            .execute(conn)
            .map_err(DbError::from)?;
        secrets(conn, state, org_id)
    })
}

/// The `webhook-signature` header value: `v1,<base64>` per secret, space-separated.
pub fn signature(secrets: &[String], id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .filter_map(|secret| {
            let key = base64::engine::general_purpose::STANDARD
                .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
                .ok()?;
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
            mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
            Some(format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            ))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The loop that sends due callbacks, a few at once.
pub async fn send_loop(state: AppState) {
    let config = state.config().jobs;
    let client = match super::remote::client(&state, config.callback_timeout, 0) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the callback client; callbacks will not be sent");
            return;
        }
    };
    let idle = config.poll_interval.min(Duration::from_millis(250));
    loop {
        let owner = state.jobs().owner().to_owned();
        let lease = config.callback_timeout * 2 + Duration::from_secs(5);
        let due = state
            .db()
            .run(move |conn| claim_due(conn, &owner, lease))
            .await;
        match due {
            Ok(due) if due.is_empty() => state.jobs().idle_callbacks(idle).await,
            Ok(due) => {
                let sends = due
                    .into_iter()
                    .map(|delivery| deliver(&state, &client, delivery));
                futures_util::future::join_all(sends).await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read due callbacks; retrying");
                tokio::time::sleep(idle).await;
            }
        }
    }
}

/// Claims up to eight due deliveries, each the oldest pending one of its job.
fn claim_due(
    conn: &mut DbConnection,
    owner: &str,
    lease: Duration,
) -> Result<Vec<DeliveryRow>, DbError> {
    let time = now();
    let claimable = || {
        callback_deliveries::state
            .eq("pending")
            .and(callback_deliveries::next_attempt_at.le(time))
            .and(
                callback_deliveries::lease_expires_at
                    .is_null()
                    .or(callback_deliveries::lease_expires_at.lt(time)),
            )
    };
    let candidates: Vec<DeliveryRow> = callback_deliveries::table
        .filter(claimable())
        .order((
            callback_deliveries::created_at.asc(),
            callback_deliveries::id.asc(),
        ))
        .select(DeliveryRow::as_select())
        .limit(32)
        .load(conn)?;
    let mut claimed = Vec::new();
    let mut jobs_seen = Vec::new();
    for candidate in candidates {
        if claimed.len() == 8 || jobs_seen.contains(&candidate.job_id) {
            continue;
        }
        jobs_seen.push(candidate.job_id.clone());
        // A job's messages go out in order: not before an older one is done with.
        let older: i64 = callback_deliveries::table
            .filter(callback_deliveries::job_id.eq(&candidate.job_id))
            .filter(callback_deliveries::state.eq("pending"))
            .filter(
                callback_deliveries::created_at.lt(candidate.created_at).or(
                    callback_deliveries::created_at
                        .eq(candidate.created_at)
                        .and(callback_deliveries::id.lt(&candidate.id)),
                ),
            )
            .count()
            .get_result(conn)?;
        if older > 0 {
            continue;
        }
        let lease_end = time + chrono::Duration::from_std(lease).unwrap_or_default();
        let taken = diesel::update(
            callback_deliveries::table
                .find(&candidate.id)
                .filter(claimable()),
        )
        .set((
            callback_deliveries::lease_owner.eq(owner),
            callback_deliveries::lease_expires_at.eq(lease_end),
        ))
        .execute(conn)?;
        if taken == 1 {
            claimed.push(candidate);
        }
    }
    Ok(claimed)
}

async fn deliver(state: &AppState, client: &reqwest::Client, delivery: DeliveryRow) {
    let config = state.config().jobs;
    let org_id = delivery.org_id.clone();
    let reader = state.clone();
    let secrets = state
        .db()
        .run(move |conn| secrets(conn, &reader, &org_id))
        .await;
    let timestamp = chrono::Utc::now().timestamp();
    let started = std::time::Instant::now();
    let result = match secrets {
        Ok(secrets) => {
            let keys: Vec<String> = secrets.into_iter().map(|secret| secret.secret).collect();
            let sent = async {
                super::remote::check_url(&delivery.url, config.allow_private_networks)
                    .map_err(|problem| problem.to_string())?;
                client
                    .post(&delivery.url)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header(
                        http::header::USER_AGENT,
                        concat!("Metamorph/", env!("CARGO_PKG_VERSION")),
                    )
                    .header("webhook-id", &delivery.id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header(
                        "webhook-signature",
                        signature(&keys, &delivery.id, timestamp, &delivery.payload),
                    )
                    .body(delivery.payload.clone())
                    .send()
                    .await
                    .map(|response| response.status().as_u16())
                    .map_err(|error| super::remote::describe(&error))
            };
            sent.await
        }
        Err(error) => Err(format!(
            "cannot read the signing secrets: {}",
            error.detail()
        )),
    };
    let took = started.elapsed();
    let attempts = delivery.attempts + 1;
    let (next_state, status, error) = match &result {
        Ok(status) if (200..300).contains(status) => ("delivered", Some(*status), None),
        Ok(410) => (
            "gone",
            Some(410),
            Some("the receiver answered 410 Gone: no more attempts".to_owned()),
        ),
        Ok(status) if u32::try_from(attempts).unwrap_or(u32::MAX) >= config.callback_attempts => (
            "failed",
            Some(*status),
            Some(format!("the receiver answered {status}")),
        ),
        Ok(status) => (
            "pending",
            Some(*status),
            Some(format!("the receiver answered {status}")),
        ),
        Err(message) if u32::try_from(attempts).unwrap_or(u32::MAX) >= config.callback_attempts => {
            ("failed", None, Some(message.clone()))
        }
        Err(message) => ("pending", None, Some(message.clone())),
    };
    state.metrics().callback_sent(next_state);
    let mut log: Vec<Value> = serde_json::from_str(&delivery.attempt_log).unwrap_or_default();
    log.push(json!({
        "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "status": status,
        "error": error,
        "duration_ms": u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
    }));
    let next_attempt_at = (next_state == "pending").then(|| {
        let base = config.callback_retry_base.as_secs_f64();
        let exponent = (attempts - 1).clamp(0, 20);
        let jitter = rand::rng().random_range(0.5..1.5);
        let wait = (base * 2f64.powi(exponent) * jitter).min(6.0 * 3600.0);
        now() + chrono::Duration::milliseconds((wait * 1000.0) as i64)
    });
    let (id, owner) = (delivery.id.clone(), state.jobs().owner().to_owned());
    let saved = state
        .db()
        .run(move |conn| {
            diesel::update(
                callback_deliveries::table
                    .find(&id)
                    .filter(callback_deliveries::lease_owner.eq(&owner)),
            )
            .set((
                callback_deliveries::state.eq(next_state),
                callback_deliveries::attempts.eq(attempts),
                callback_deliveries::attempt_log.eq(Value::Array(log).to_string()),
                callback_deliveries::next_attempt_at.eq(next_attempt_at),
                callback_deliveries::lease_owner.eq(None::<String>),
                callback_deliveries::lease_expires_at.eq(None::<NaiveDateTime>),
                callback_deliveries::updated_at.eq(now()),
            ))
            .execute(conn)
            .map_err(DbError::from)
        })
        .await;
    if let Err(error) = saved {
        tracing::warn!(%error, delivery = %delivery.id, "cannot record a callback attempt");
    }
    if next_state == "pending" {
        tracing::info!(delivery = %delivery.id, job = %delivery.job_id, attempts, error = ?error, "callback not delivered; will retry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(
                std::slice::from_ref(&secret),
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                body
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let two = signature(&[secret.clone(), new_secret()], "msg_1", 1, body);
        assert_eq!(two.split(' ').count(), 2);
        assert!(two.split(' ').all(|part| part.starts_with("v1,")));
    }
}
