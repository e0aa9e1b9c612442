//! Quotas, usage and retention: the sweeper deleting expired files (and not the ones kept
//! or still read by a job), superusers setting an organisation's own quota and retention,
//! and usage staying equal to what storage holds through uploads, conversions, deletes,
//! `metamorph admin recompute-usage` and a purge.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use metamorph_tests::{
    Auth, Backend, Server, Setup, USER_PASSWORD, assert_problem, corpus, field_paths,
    on_both_backends, on_every_backend,
};
use serde_json::{Value, json};

use super::transfers::upload;

mod sweeper {
    use super::*;
    on_every_backend!(expired_anonymous_files_go_registered_ones_and_files_a_job_reads_stay);
}
mod admin {
    use super::*;
    on_both_backends!(superusers_set_an_organisations_own_quota_and_retention);
}
mod usage {
    use super::*;
    on_every_backend!(usage_equals_what_storage_holds_through_deletes_drift_and_a_purge);
}

fn bearer(server: &Server, email: &str, role: &str, org: &str) -> Result<Auth> {
    server.create_user(email, role, org)?;
    Ok(Auth::Bearer(server.login(email, USER_PASSWORD)?))
}

fn text<'a>(value: &'a Value, key: &str) -> Result<&'a str> {
    value[key]
        .as_str()
        .with_context(|| format!("no `{key}` in {value}"))
}

/// Seconds since the epoch of an RFC 3339 time such as `2026-11-23T10:00:00Z` (fractions
/// ignored).
fn unix(time: &str) -> Result<i64> {
    let field = |range: std::ops::Range<usize>| -> Result<i64> {
        time.get(range)
            .and_then(|part| part.parse().ok())
            .with_context(|| format!("`{time}` is not an RFC 3339 time"))
    };
    let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (hour, minute, second) = (field(11..13)?, field(14..16)?, field(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Waits up to `limit` for `done`.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !done()? {
        if Instant::now() > deadline {
            bail!("{what} did not happen within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Checks that the organisation's usage is what its storage holds, object for object.
fn usage_matches_storage(server: &Server, auth: &Auth, org_id: &str) -> Result<Value> {
    let usage = server.expect("GET", "/api/usage", auth, None, 200)?;
    let objects = server.stored_objects(org_id)?;
    let bytes: u64 = objects.iter().map(|(_, size)| size).sum();
    ensure!(
        usage["bytes_used"] == bytes && usage["file_count"] == objects.len(),
        "usage {usage} but storage holds {objects:?}"
    );
    Ok(usage)
}

fn expired_anonymous_files_go_registered_ones_and_files_a_job_reads_stay(
    setup: Setup,
) -> Result<()> {
    // No workers: the job below stays queued, reading its input, for as long as needed.
    let server = Server::builder(setup)
        .plugins(&["metamorph_plugin_image.wasm"])
        .env("METAMORPH_ANONYMOUS_RETENTION", "3s")
        .env("METAMORPH_RETENTION__SWEEP_INTERVAL", "1s")
        .env("METAMORPH_WORKERS", "0")
        .start()?;
    let png = std::fs::read(corpus("image/png-exif.png"))?;

    // A registered organisation's file is kept until deleted.
    let owner = bearer(&server, "owner@acme.test", "admin", "acme")?;
    let kept = upload(&server, &owner, "kept.png", &png)?;
    ensure!(kept["expires_at"].is_null(), "{kept}");

    // An anonymous session's files expire 3 s after they are stored.
    let session = server.expect("POST", "/api/anon/session", &Auth::None, None, 201)?;
    let anon = Auth::Bearer(text(&session, "token")?.to_owned());
    let org_id = text(&session, "org_id")?.to_owned();
    let expiring = upload(&server, &anon, "expiring.png", &png)?;
    let lifetime = unix(text(&expiring, "expires_at")?)? - unix(text(&expiring, "created_at")?)?;
    ensure!((2..=4).contains(&lifetime), "{expiring}");
    let read = upload(&server, &anon, "read.png", &png)?;
    let (expiring_id, read_id) = (text(&expiring, "id")?, text(&read, "id")?);

    // A job that has not run yet reads the second one.
    let job = server.expect(
        "POST",
        "/api/conversion-jobs",
        &anon,
        Some(json!({
            "inputs": [{"type": "file", "file_id": read_id}],
            "conversions": [{"target": "jpg"}]
        })),
        201,
    )?;
    ensure!(job["status"]["code"] == "queued", "{job}");

    // The first goes: record, bytes and link.
    let expiring_path = format!("/api/files/{org_id}/{expiring_id}");
    wait_until(
        Duration::from_secs(20),
        "the expired file's deletion",
        || Ok(server.call("GET", &expiring_path, &anon, None)?.status() == 404),
    )?;
    let link = server
        .client()
        .get(text(&expiring, "download_url")?)
        .send()?;
    ensure!(link.status() == 404, "{}", link.status());
    ensure!(
        server.stored_objects(&org_id)? == vec![(read_id.to_owned(), png.len() as u64)],
        "{:?}",
        server.stored_objects(&org_id)?
    );
    server.wait_for_log(|line| line["message"] == "deleted expired files")?;

    // The one the job reads stays past its expiry, counted in the usage.
    let still = server.expect(
        "GET",
        &format!("/api/files/{org_id}/{read_id}"),
        &anon,
        None,
        200,
    )?;
    ensure!(still["status"] == "ready", "{still}");
    let usage = usage_matches_storage(&server, &anon, &org_id)?;
    ensure!(usage["file_count"] == 1, "{usage}");

    // The registered organisation's file is untouched, bytes and all.
    let kept_path = format!(
        "/api/files/{}/{}",
        text(&kept, "org_id")?,
        text(&kept, "id")?
    );
    server.expect("GET", &kept_path, &owner, None, 200)?;
    let download = server.client().get(text(&kept, "download_url")?).send()?;
    ensure!(download.status() == 200);
    ensure!(download.bytes()?.as_ref() == png.as_slice());

    // Once the job is canceled, nothing reads it and the next round deletes it.
    let stopped = server.expect(
        "DELETE",
        &format!("/api/conversion-jobs/{org_id}/{}", text(&job, "id")?),
        &anon,
        None,
        200,
    )?;
    ensure!(stopped["status"]["code"] == "canceled", "{stopped}");
    let read_path = format!("/api/files/{org_id}/{read_id}");
    wait_until(Duration::from_secs(20), "the freed file's deletion", || {
        Ok(server.call("GET", &read_path, &anon, None)?.status() == 404)
    })?;
    ensure!(server.stored_objects(&org_id)?.is_empty());
    let usage = usage_matches_storage(&server, &anon, &org_id)?;
    ensure!(usage["bytes_used"] == 0, "{usage}");
    server.expect("GET", "/api/health", &Auth::None, None, 200)?;
    Ok(())
}

fn superusers_set_an_organisations_own_quota_and_retention(backend: Backend) -> Result<()> {
    let server = Server::start(backend)?;
    let root = Auth::Bearer(server.root_token()?);
    let owner = bearer(&server, "owner@acme.test", "admin", "acme")?;
    let me = server.expect("GET", "/api/auth/me", &owner, None, 200)?;
    let org_id = me["org"]["id"].as_str().context("org id")?.to_owned();
    let path = format!("/api/admin/orgs/{org_id}");

    // Organisation admins cannot raise their own quota, or even look.
    assert_problem(server.call("GET", &path, &owner, None)?, 403, "forbidden")?;
    assert_problem(
        server.call("PATCH", &path, &owner, Some(json!({"quota_bytes": null})))?,
        403,
        "forbidden",
    )?;
    let org = server.expect("GET", &path, &root, None, 200)?;
    ensure!(org["name"] == "acme" && org["kind"] == "standard", "{org}");
    ensure!(org["quota_bytes"] == 20u64 << 30, "{org}");
    ensure!(org["quota_override"].is_null(), "{org}");
    ensure!(
        org["retention"]
            == json!({"private": "forever", "org": "forever", "restricted": "forever", "public": "forever"}),
        "{org}"
    );
    ensure!(org["usage"]["bytes_used"] == 0, "{org}");
    let page = server.expect("GET", "/api/admin/orgs?limit=100", &root, None, 200)?;
    let items = page["items"].as_array().context("items")?;
    ensure!(
        items.iter().any(|item| item["id"] == org_id.as_str()),
        "{page}"
    );

    // A smaller quota applies at once.
    let org = server.expect(
        "PATCH",
        &path,
        &root,
        Some(json!({"quota_bytes": "1 KiB"})),
        200,
    )?;
    ensure!(
        org["quota_bytes"] == 1024 && org["quota_override"] == 1024,
        "{org}"
    );
    let usage = server.expect("GET", "/api/usage", &owner, None, 200)?;
    ensure!(usage["quota_bytes"] == 1024, "{usage}");
    let png = std::fs::read(corpus("image/png-exif.png"))?;
    let refused = server.call(
        "POST",
        "/api/uploads/init",
        &owner,
        Some(json!({"filename": "photo.png", "size": png.len()})),
    )?;
    let problem = assert_problem(refused, 413, "quota_exceeded")?;
    ensure!(
        text(&problem, "detail")?.contains("1.0 KiB"),
        "the detail says what is free: {problem}"
    );
    let org = server.expect(
        "PATCH",
        &path,
        &root,
        Some(json!({"quota_bytes": null})),
        200,
    )?;
    ensure!(org["quota_override"].is_null() && org["quota_bytes"] == 20u64 << 30);
    let file = upload(&server, &owner, "photo.png", &png)?;
    ensure!(file["expires_at"].is_null(), "{file}");
    let file_path = format!("/api/files/{org_id}/{}", text(&file, "id")?);

    // Its own retention: public files a week, private ones a day; existing files follow.
    let org = server.expect(
        "PATCH",
        &path,
        &root,
        Some(json!({"retention": {"public": "7d", "private": "1d"}})),
        200,
    )?;
    ensure!(
        org["retention"]["public"] == "7days" && org["retention"]["org"] == "forever",
        "{org}"
    );
    ensure!(
        org["retention_override"] == json!({"private": "1day", "public": "7days"}),
        "{org}"
    );
    let lifetime = |record: &Value| -> Result<i64> {
        Ok(unix(text(record, "expires_at")?)? - unix(text(record, "created_at")?)?)
    };
    let record = server.expect("GET", &file_path, &owner, None, 200)?;
    ensure!(lifetime(&record)? == 86_400, "{record}");
    server.expect(
        "POST",
        &format!("{file_path}/share"),
        &owner,
        Some(json!({"visibility": "public"})),
        200,
    )?;
    let record = server.expect("GET", &file_path, &owner, None, 200)?;
    ensure!(lifetime(&record)? == 7 * 86_400, "{record}");
    server.expect("PATCH", &path, &root, Some(json!({"retention": null})), 200)?;
    let record = server.expect("GET", &file_path, &owner, None, 200)?;
    ensure!(record["expires_at"].is_null(), "{record}");

    // Bad bodies name each bad field; unknown organisations are 404.
    let problem = assert_problem(
        server.call(
            "PATCH",
            &path,
            &root,
            Some(json!({
                "quota_bytes": -5,
                "retention": {"secret": "1d", "public": "soon"},
                "name": "renamed"
            })),
        )?,
        422,
        "validation_failed",
    )?;
    let paths = field_paths(&problem);
    ensure!(
        paths
            == [
                "/name",
                "/quota_bytes",
                "/retention/public",
                "/retention/secret"
            ],
        "{problem}"
    );
    assert_problem(
        server.call(
            "PATCH",
            "/api/admin/orgs/no-such-org",
            &root,
            Some(json!({"quota_bytes": 1})),
        )?,
        404,
        "not_found",
    )?;

    // Each change is in the audit trail (under the superuser's own organisation).
    let audit = server.expect("GET", "/api/audit?limit=200", &root, None, 200)?;
    let updates = audit["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|event| event["resource"] == "orgs" && event["action"] == "update")
        .filter(|event| event["resource_id"] == org_id.as_str())
        .filter(|event| event["outcome"] == "success")
        .count();
    ensure!(updates == 4, "{audit}");
    Ok(())
}

fn usage_equals_what_storage_holds_through_deletes_drift_and_a_purge(setup: Setup) -> Result<()> {
    let server = Server::builder(setup)
        .plugins(&["metamorph_plugin_image.wasm"])
        .start()?;
    let root = Auth::Bearer(server.root_token()?);
    let owner = bearer(&server, "owner@acme.test", "admin", "acme")?;
    let me = server.expect("GET", "/api/auth/me", &owner, None, 200)?;
    let org_id = me["org"]["id"].as_str().context("org id")?.to_owned();

    // Uploads, a conversion and a delete.
    let png = std::fs::read(corpus("image/png-exif.png"))?;
    let a = upload(&server, &owner, "a.png", &png)?;
    let b = upload(&server, &owner, "b.png", &png[..png.len() / 2])?;
    let c = upload(&server, &owner, "c.png", &png)?;
    let job = server.expect(
        "POST",
        "/api/conversion-jobs",
        &owner,
        Some(json!({
            "inputs": [{"type": "file", "file_id": text(&a, "id")?}],
            "conversions": [{"target": "jpg"}]
        })),
        201,
    )?;
    let job = super::jobs::wait_done(&server, &owner, &job)?;
    ensure!(job["status"]["code"] == "completed", "{job}");
    server.expect(
        "DELETE",
        &format!("/api/files/{org_id}/{}", text(&b, "id")?),
        &owner,
        None,
        204,
    )?;
    let usage = usage_matches_storage(&server, &owner, &org_id)?;
    ensure!(usage["file_count"] == 3, "a, c and the output: {usage}");

    // The check finds nothing to fix.
    let report = server.admin(&["recompute-usage"])?;
    let line = report
        .lines()
        .find(|line| line.starts_with(&org_id))
        .with_context(|| format!("no line for {org_id}:\n{report}"))?;
    ensure!(line.ends_with("agrees with storage"), "{report}");

    // A mistyped organisation is an error, not a clean report.
    let typo = server.admin(&["recompute-usage", "--org", "no-such-org"]);
    ensure!(
        typo.as_ref().is_err_and(|error| error
            .to_string()
            .contains("there is no organisation `no-such-org`")),
        "{typo:?}"
    );

    // Drift behind the service's back: c's bytes vanish, and a deleted organisation left
    // an object.
    let c_id = text(&c, "id")?;
    server.delete_object(&format!("orgs/{org_id}/files/{c_id}"))?;
    server.put_object("orgs/gone-org/files/leftover", b"leftover")?;
    let dry = server.admin(&["recompute-usage", "--dry-run"])?;
    ensure!(
        dry.contains("1 file(s) without bytes to remove") && dry.contains("nothing was changed"),
        "{dry}"
    );
    ensure!(server.stored_object_count("orgs/gone-org/")? == 1, "{dry}");
    let fixed = server.admin(&["recompute-usage"])?;
    let line = fixed
        .lines()
        .find(|line| line.starts_with(&org_id))
        .context("org line")?;
    ensure!(line.ends_with("1 file(s) without bytes removed"), "{fixed}");
    let gone = fixed
        .lines()
        .find(|line| line.starts_with("gone-org"))
        .context("gone-org line")?;
    ensure!(
        gone.contains("(deleted)") && gone.ends_with("1 leftover object(s), 8 B, deleted"),
        "{fixed}"
    );
    ensure!(server.stored_object_count("orgs/gone-org/")? == 0);
    assert_problem(
        server.call("GET", &format!("/api/files/{org_id}/{c_id}"), &owner, None)?,
        404,
        "not_found",
    )?;
    let usage = usage_matches_storage(&server, &owner, &org_id)?;
    ensure!(usage["file_count"] == 2, "{usage}");

    // A purge takes everything, says what, and leaves usage at what storage holds: none.
    let purge = format!("/api/admin/orgs/{org_id}/purge");
    assert_problem(server.call("POST", &purge, &owner, None)?, 403, "forbidden")?;
    let before = server.stored_objects(&org_id)?;
    let purged = server.expect("POST", &purge, &root, None, 200)?;
    ensure!(
        purged["files_removed"] == 2
            && purged["objects_removed"] == before.len()
            && purged["bytes_removed"] == before.iter().map(|(_, size)| size).sum::<u64>(),
        "{purged} after {before:?}"
    );
    ensure!(
        purged["usage"]["bytes_used"] == 0 && purged["usage"]["file_count"] == 0,
        "{purged}"
    );
    ensure!(server.stored_objects(&org_id)?.is_empty());
    let files = server.expect("GET", "/api/files", &owner, None, 200)?;
    ensure!(files["items"] == json!([]), "{files}");
    usage_matches_storage(&server, &owner, &org_id)?;
    assert_problem(
        server.call("POST", "/api/admin/orgs/no-such-org/purge", &root, None)?,
        404,
        "not_found",
    )?;

    // The organisation goes on.
    upload(&server, &owner, "again.png", &png)?;
    let usage = usage_matches_storage(&server, &owner, &org_id)?;
    ensure!(usage["bytes_used"] == png.len(), "{usage}");
    Ok(())
}
