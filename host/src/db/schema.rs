//! The tables, as diesel sees them. Kept in step with `migrations/` by hand (see
//! `migrations/README.md`); [`verify`] checks at start-up that the database agrees.

use diesel::{QueryDsl, RunQueryDsl};

use super::{DbConnection, DbError};

diesel::table! {
    /// Organisations: the unit of tenancy. Every file, job and key belongs to one.
    orgs (id) {
        id -> Text,
        name -> Text,
        kind -> Text,
        quota_bytes -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        retention -> Nullable<Text>,
    }
}

diesel::table! {
    /// People and anonymous sessions; each belongs to one organisation.
    users (id) {
        id -> Text,
        org_id -> Text,
        email -> Nullable<Text>,
        display_name -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        role -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// API keys, stored hashed.
    api_keys (id) {
        id -> Text,
        org_id -> Text,
        user_id -> Text,
        name -> Text,
        prefix -> Text,
        secret_hash -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Stored files: uploads, fetched inputs and conversion outputs.
    files (id) {
        id -> Text,
        org_id -> Text,
        owner_id -> Nullable<Text>,
        filename -> Text,
        content_type -> Nullable<Text>,
        format -> Nullable<Text>,
        size_bytes -> Nullable<BigInt>,
        sha256 -> Nullable<Text>,
        storage_key -> Nullable<Text>,
        status -> Text,
        visibility -> Text,
        origin -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        declared_size -> Nullable<BigInt>,
        upload_started_at -> Nullable<Timestamp>,
        download_count -> BigInt,
        max_downloads -> Nullable<BigInt>,
        link_epoch -> Integer,
    }
}

diesel::table! {
    /// Conversion jobs; also the work queue.
    jobs (id) {
        id -> Text,
        org_id -> Text,
        created_by -> Nullable<Text>,
        status -> Text,
        status_info -> Nullable<Text>,
        spec -> Text,
        tag -> Nullable<Text>,
        callback_url -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        request_hash -> Nullable<Text>,
        attempts -> Integer,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        queued_at -> Nullable<Timestamp>,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        deadline_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// The work queue: one row per import or conversion of a job.
    job_tasks (id) {
        id -> Text,
        job_id -> Text,
        org_id -> Text,
        kind -> Text,
        input_index -> Integer,
        conversion_index -> Nullable<Integer>,
        input_file_id -> Nullable<Text>,
        target -> Nullable<Text>,
        pair -> Text,
        status -> Text,
        attempts -> Integer,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        output_file_id -> Nullable<Text>,
        cached -> Bool,
        error_code -> Nullable<Text>,
        error_message -> Nullable<Text>,
        created_at -> Timestamp,
        queued_at -> Nullable<Timestamp>,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        export -> Nullable<Text>,
    }
}

diesel::table! {
    /// Outputs by what made them, so a conversion asked again is not run again.
    conversion_cache (org_id, cache_key) {
        org_id -> Text,
        cache_key -> Text,
        file_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Callback signing secrets, sealed.
    webhook_secrets (id) {
        id -> Text,
        org_id -> Text,
        secret -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Callback messages and their delivery attempts.
    callback_deliveries (id) {
        id -> Text,
        job_id -> Text,
        org_id -> Text,
        url -> Text,
        event -> Text,
        payload -> Text,
        state -> Text,
        attempts -> Integer,
        attempt_log -> Text,
        next_attempt_at -> Nullable<Timestamp>,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// The audit trail of state-changing calls.
    audit_events (id) {
        id -> Text,
        org_id -> Nullable<Text>,
        actor_user_id -> Nullable<Text>,
        actor_kind -> Text,
        action -> Text,
        resource -> Text,
        resource_id -> Nullable<Text>,
        request_id -> Nullable<Text>,
        outcome -> Text,
        detail -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Refresh tokens, stored hashed; rotated on every use.
    refresh_tokens (id) {
        id -> Text,
        user_id -> Text,
        family_id -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Per-organisation settings (the `settings` resource).
    settings (id) {
        id -> Text,
        org_id -> Text,
        key -> Text,
        value -> Text,
        description -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Per-organisation feature flags (the `feature-flags` resource).
    feature_flags (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        enabled -> Bool,
        description -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Where outputs can be written (the `destinations` resource).
    destinations (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        kind -> Text,
        parameters -> Text,
        credentials -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(users -> orgs (org_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(settings -> orgs (org_id));
diesel::joinable!(feature_flags -> orgs (org_id));
diesel::joinable!(destinations -> orgs (org_id));
diesel::joinable!(api_keys -> orgs (org_id));
diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(files -> orgs (org_id));
diesel::joinable!(jobs -> orgs (org_id));
diesel::joinable!(job_tasks -> jobs (job_id));

diesel::allow_tables_to_appear_in_same_query!(
    orgs,
    users,
    api_keys,
    files,
    jobs,
    audit_events,
    refresh_tokens,
    settings,
    feature_flags,
    destinations,
    job_tasks,
    conversion_cache,
    webhook_secrets,
    callback_deliveries,
);

/// Checks that every table and column above exists, by selecting each table's columns from
/// zero rows. A migration missing from the database, or a column renamed on one side only,
/// fails here with the database's message instead of at the first request that needs it.
pub fn verify(conn: &mut DbConnection) -> Result<(), DbError> {
    orgs::table
        .select(orgs::all_columns)
        .limit(0)
        .execute(conn)?;
    users::table
        .select(users::all_columns)
        .limit(0)
        .execute(conn)?;
    api_keys::table
        .select(api_keys::all_columns)
        .limit(0)
        .execute(conn)?;
    files::table
        .select(files::all_columns)
        .limit(0)
        .execute(conn)?;
    jobs::table
        .select(jobs::all_columns)
        .limit(0)
        .execute(conn)?;
    audit_events::table
        .select(audit_events::all_columns)
        .limit(0)
        .execute(conn)?;
    job_tasks::table
        .select(job_tasks::all_columns)
        .limit(0)
        .execute(conn)?;
    conversion_cache::table
        .select(conversion_cache::all_columns)
        .limit(0)
        .execute(conn)?;
    webhook_secrets::table
        .select(webhook_secrets::all_columns)
        .limit(0)
        .execute(conn)?;
    callback_deliveries::table
        .select(callback_deliveries::all_columns)
        .limit(0)
        .execute(conn)?;
    Ok(())
}
