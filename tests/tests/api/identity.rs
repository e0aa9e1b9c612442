//! Sign-in, tokens, API keys, gateways, anonymous sessions and the audit trail.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use metamorph_tests::{
    Auth, Backend, ROOT_EMAIL, ROOT_PASSWORD, Server, USER_PASSWORD, assert_problem, header,
    on_both_backends,
};
use serde_json::{Value, json};

on_both_backends!(
    login_refresh_rotation_and_reuse_refusal,
    expired_forged_and_malformed_tokens_are_401,
    api_key_lifecycle,
    gateway_headers_count_only_with_the_right_key,
    anonymous_sessions_get_their_own_org_and_expire,
    disabling_a_user_stops_their_tokens_and_keys_at_once,
    state_changes_are_audited_and_the_trail_is_scoped,
);

fn login_refresh_rotation_and_reuse_refusal(backend: Backend) -> Result<()> {
    let server = Server::start(backend)?;
    let tokens = server.expect(
        "POST",
        "/api/auth/login",
        &Auth::None,
        Some(json!({"email": ROOT_EMAIL, "password": ROOT_PASSWORD})),
        200,
    )?;
    ensure!(
        tokens["token_type"] == "bearer" && tokens["expires_in"] == 900,
        "{tokens}"
    );
    let access = Auth::Bearer(
        tokens["access_token"]
            .as_str()
            .context("access")?
            .to_owned(),
    );
    let me = server.expect("GET", "/api/auth/me", &access, None, 200)?;
    ensure!(
        me["role"] == "superuser"
            && me["auth_mode"] == "bearer"
            && me["user"]["email"] == ROOT_EMAIL,
        "{me}"
    );
    ensure!(me["scopes"] == json!(["read", "write", "convert"]));

    for (body, detail) in [
        (
            json!({"email": ROOT_EMAIL, "password": "wrong password"}),
            "wrong",
        ),
        (
            json!({"email": "nobody@nowhere.test", "password": ROOT_PASSWORD}),
            "wrong",
        ),
    ] {
        let problem = assert_problem(
            server.call("POST", "/api/auth/login", &Auth::None, Some(body))?,
            401,
            "unauthenticated",
        )?;
        ensure!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(detail),
            "{problem}"
        );
    }
    assert_problem(
        server.call(
            "POST",
            "/api/auth/login",
            &Auth::None,
            Some(json!({"email": ROOT_EMAIL})),
        )?,
        400,
        "invalid_json",
    )?;

    let first = tokens["refresh_token"]
        .as_str()
        .context("refresh")?
        .to_owned();
    let second = server.expect(
        "POST",
        "/api/auth/refresh",
        &Auth::None,
        Some(json!({"refresh_token": first})),
        200,
    )?;
    let second_refresh = second["refresh_token"]
        .as_str()
        .context("refresh")?
        .to_owned();
    ensure!(second_refresh != first, "the refresh token rotates");
    let second_access = Auth::Bearer(
        second["access_token"]
            .as_str()
            .context("access")?
            .to_owned(),
    );
    server.expect("GET", "/api/auth/me", &second_access, None, 200)?;

    // Reusing the first token is refused, and burns the whole sign-in: its successor too.
    let reuse = assert_problem(
        server.call(
            "POST",
            "/api/auth/refresh",
            &Auth::None,
            Some(json!({"refresh_token": first})),
        )?,
        401,
        "unauthenticated",
    )?;
    ensure!(
        reuse["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("already used"),
        "{reuse}"
    );
    assert_problem(
        server.call(
            "POST",
            "/api/auth/refresh",
            &Auth::None,
            Some(json!({"refresh_token": second_refresh})),
        )?,
        401,
        "unauthenticated",
    )?;
    assert_problem(
        server.call(
            "POST",
            "/api/auth/refresh",
            &Auth::None,
            Some(json!({"refresh_token": "mmr_nonsense"})),
        )?,
        401,
        "unauthenticated",
    )?;

    // Another sign-in is unaffected.
    let other = server.expect(
        "POST",
        "/api/auth/login",
        &Auth::None,
        Some(json!({"email": ROOT_EMAIL, "password": ROOT_PASSWORD})),
        200,
    )?;
    server.expect(
        "POST",
        "/api/auth/refresh",
        &Auth::None,
        Some(json!({"refresh_token": other["refresh_token"]})),
        200,
    )?;
    Ok(())
}

fn signed(key: &str, claims: &Value) -> Result<String> {
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )?)
}

fn expired_forged_and_malformed_tokens_are_401(backend: Backend) -> Result<()> {
    let server = Server::start(backend)?;
    let me = server.expect(
        "GET",
        "/api/auth/me",
        &Auth::Bearer(server.root_token()?),
        None,
        200,
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = |exp: u64| json!({"sub": me["user"]["id"], "org": me["org"]["id"], "kind": "access", "iat": now - 1000, "exp": exp, "jti": "t"});
    let key = server.jwt_key()?;
    let valid = signed(&key, &claims(now + 600))?;
    server.expect("GET", "/api/auth/me", &Auth::Bearer(valid), None, 200)?;

    let expired = signed(&key, &claims(now - 1))?;
    let problem = assert_problem(
        server.call("GET", "/api/auth/me", &Auth::Bearer(expired), None)?,
        401,
        "unauthenticated",
    )?;
    ensure!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{problem}"
    );

    let forged = signed("a key that is not the server's key!!", &claims(now + 600))?;
    assert_problem(
        server.call("GET", "/api/auth/me", &Auth::Bearer(forged), None)?,
        401,
        "unauthenticated",
    )?;
    let response = server.call(
        "GET",
        "/api/settings",
        &Auth::Bearer("garbage".into()),
        None,
    )?;
    ensure!(
        header(&response, "www-authenticate").starts_with("Bearer"),
        "401 carries a challenge"
    );
    assert_problem(response, 401, "unauthenticated")?;
    let basic = server.call(
        "GET",
        "/api/settings",
        &Auth::Headers(vec![("Authorization".into(), "Basic dTpw".into())]),
        None,
    )?;
    assert_problem(basic, 401, "unauthenticated")?;
    assert_problem(
        server.call("GET", "/api/settings", &Auth::None, None)?,
        401,
        "unauthenticated",
    )?;
    Ok(())
}

fn api_key_lifecycle(backend: Backend) -> Result<()> {
    let server = Server::start(backend)?;
    server.create_user("member@acme.test", "member", "acme")?;
    server.create_user("other@acme.test", "member", "acme")?;
    let member = Auth::Bearer(server.login("member@acme.test", USER_PASSWORD)?);
    let other = Auth::Bearer(server.login("other@acme.test", USER_PASSWORD)?);

    let created = server.expect(
        "POST",
        "/api/api-keys",
        &member,
        Some(json!({"name": "ci"})),
        201,
    )?;
    let key = created["key"].as_str().context("key")?.to_owned();
    let key_id = created["id"].as_str().context("id")?.to_owned();
    ensure!(
        key.starts_with("mmk_") && key.contains(created["prefix"].as_str().unwrap_or("?")),
        "{created}"
    );
    ensure!(created["scopes"] == json!(["read", "write", "convert"]));

    let with_key = Auth::ApiKey(key.clone());
    let me = server.expect("GET", "/api/auth/me", &with_key, None, 200)?;
    ensure!(
        me["auth_mode"] == "api_key"
            && me["role"] == "member"
            && me["api_key_id"] == key_id.as_str(),
        "{me}"
    );
    server.expect(
        "POST",
        "/api/files",
        &with_key,
        Some(json!({"filename": "a.txt"})),
        201,
    )?;

    let listed = server.expect("GET", "/api/api-keys", &member, None, 200)?;
    ensure!(
        listed["items"].as_array().map(Vec::len) == Some(1),
        "{listed}"
    );
    ensure!(
        listed["items"][0].get("key").is_none() && !listed.to_string().contains(&key),
        "the secret is shown once only"
    );
    let others = server.expect("GET", "/api/api-keys", &other, None, 200)?;
    ensure!(
        others["items"].as_array().is_some_and(Vec::is_empty),
        "keys are per user"
    );

    // A key of a narrower scope.
    let read_only = server.expect(
        "POST",
        "/api/api-keys",
        &member,
        Some(json!({"name": "ro", "scopes": ["read"]})),
        201,
    )?;
    let read_only = Auth::ApiKey(read_only["key"].as_str().context("key")?.to_owned());
    server.expect("GET", "/api/files", &read_only, None, 200)?;
    let refused = assert_problem(
        server.call(
            "POST",
            "/api/files",
            &read_only,
            Some(json!({"filename": "b.txt"})),
        )?,
        403,
        "forbidden",
    )?;
    ensure!(
        refused["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("`write` scope"),
        "{refused}"
    );

    // An expiry in the past is refused; a bad key is 401; another user's key cannot be revoked.
    assert_problem(
        server.call(
            "POST",
            "/api/api-keys",
            &member,
            Some(json!({"name": "old", "expires_at": "2001-01-01T00:00:00Z"})),
        )?,
        422,
        "validation_failed",
    )?;
    assert_problem(
        server.call(
            "GET",
            "/api/auth/me",
            &Auth::ApiKey(format!("{key}x")),
            None,
        )?,
        401,
        "unauthenticated",
    )?;
    assert_problem(
        server.call(
            "GET",
            "/api/auth/me",
            &Auth::ApiKey("mmk_nothing".into()),
            None,
        )?,
        401,
        "unauthenticated",
    )?;
    assert_problem(
        server.call("DELETE", &format!("/api/api-keys/{key_id}"), &other, None)?,
        404,
        "not_found",
    )?;

    server.expect(
        "DELETE",
        &format!("/api/api-keys/{key_id}"),
        &member,
        None,
        204,
    )?;
    assert_problem(
        server.call("GET", "/api/auth/me", &with_key, None)?,
        401,
        "unauthenticated",
    )?;
    assert_problem(
        server.call("DELETE", &format!("/api/api-keys/{key_id}"), &member, None)?,
        404,
        "not_found",
    )?;

    let session = server.expect("POST", "/api/anon/session", &Auth::None, None, 201)?;
    let anonymous = Auth::Bearer(session["token"].as_str().context("token")?.to_owned());
    assert_problem(
        server.call(
            "POST",
            "/api/api-keys",
            &anonymous,
            Some(json!({"name": "x"})),
        )?,
        403,
        "forbidden",
    )?;
    Ok(())
}

fn gateway_headers_count_only_with_the_right_key(backend: Backend) -> Result<()> {
    let gateway_key = "the gateway's shared secret, long enough";
    let server = Server::builder(backend)
        .env("METAMORPH_GATEWAY_KEY", gateway_key)
        .start()?;
    let headers = |key: &str, role: &str| {
        Auth::Headers(vec![
            ("X-Gateway-Key".into(), key.into()),
            ("X-Auth-Org-Id".into(), "tenant-42".into()),
            ("X-Auth-User-Id".into(), "alice".into()),
            ("X-Auth-Role".into(), role.into()),
        ])
    };
    let me = server.expect(
        "GET",
        "/api/auth/me",
        &headers(gateway_key, "admin"),
        None,
        200,
    )?;
    ensure!(
        me["auth_mode"] == "gateway"
            && me["role"] == "admin"
            && me["org"]["id"] == "tenant-42"
            && me["user"]["id"] == "alice",
        "{me}"
    );
    let setting = server.expect(
        "POST",
        "/api/settings",
        &headers(gateway_key, "admin"),
        Some(json!({"key": "k", "value": 1})),
        201,
    )?;
    ensure!(setting["org_id"] == "tenant-42");
    // The gateway is authoritative on roles: alice demoted is refused at once.
    assert_problem(
        server.call(
            "POST",
            "/api/settings",
            &headers(gateway_key, "member"),
            Some(json!({"key": "k2", "value": 1})),
        )?,
        403,
        "forbidden",
    )?;

    assert_problem(
        server.call(
            "GET",
            "/api/auth/me",
            &headers("a wrong key, also long enough to look real", "admin"),
            None,
        )?,
        401,
        "unauthenticated",
    )?;
    let without_key = Auth::Headers(vec![
        ("X-Auth-Org-Id".into(), "tenant-42".into()),
        ("X-Auth-User-Id".into(), "alice".into()),
    ]);
    assert_problem(
        server.call("GET", "/api/auth/me", &without_key, None)?,
        401,
        "unauthenticated",
    )?;
    // Wrong gateway key plus a real token: the headers are ignored, the token counts.
    let mut mixed = vec![(
        "Authorization".to_owned(),
        format!("Bearer {}", server.root_token()?),
    )];
    if let Auth::Headers(wrong) = headers("wrong", "admin") {
        mixed.extend(wrong);
    }
    let me = server.expect("GET", "/api/auth/me", &Auth::Headers(mixed), None, 200)?;
    ensure!(
        me["auth_mode"] == "bearer" && me["user"]["email"] == ROOT_EMAIL,
        "{me}"
    );

    // Without a configured gateway key, the headers are ignored even with some key.
    let plain = Server::start(backend)?;
    assert_problem(
        plain.call(
            "GET",
            "/api/auth/me",
            &headers(gateway_key, "superuser"),
            None,
        )?,
        401,
        "unauthenticated",
    )?;
    Ok(())
}

fn anonymous_sessions_get_their_own_org_and_expire(backend: Backend) -> Result<()> {
    let server = Server::builder(backend)
        .env("METAMORPH_ANONYMOUS_SESSION_TTL", "3s")
        .env("METAMORPH_AUTH__CLEANUP_INTERVAL", "500ms")
        .start()?;
    let root = Auth::Bearer(server.root_token()?);
    let first = server.expect("POST", "/api/anon/session", &Auth::None, None, 201)?;
    let second = server.expect("POST", "/api/anon/session", &Auth::None, None, 201)?;
    ensure!(
        first["org_id"] != second["org_id"],
        "a fresh organisation per session"
    );
    ensure!(
        first["expires_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z')),
        "{first}"
    );
    let anonymous = Auth::Bearer(first["token"].as_str().context("token")?.to_owned());
    let me = server.expect("GET", "/api/auth/me", &anonymous, None, 200)?;
    ensure!(
        me["role"] == "anonymous"
            && me["auth_mode"] == "anonymous"
            && me["org"]["kind"] == "anonymous",
        "{me}"
    );
    let file = server.expect(
        "POST",
        "/api/files",
        &anonymous,
        Some(json!({"filename": "mine.txt"})),
        201,
    )?;
    let org = first["org_id"].as_str().context("org")?;
    let listed = server.expect("GET", &format!("/api/files?org_id={org}"), &root, None, 200)?;
    ensure!(listed["items"].as_array().map(Vec::len) == Some(1));

    std::thread::sleep(Duration::from_millis(4500));
    let problem = assert_problem(
        server.call("GET", "/api/auth/me", &anonymous, None)?,
        401,
        "unauthenticated",
    )?;
    ensure!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no longer exists")
            || problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("expired"),
        "{problem}"
    );
    let listed = server.expect("GET", &format!("/api/files?org_id={org}"), &root, None, 200)?;
    ensure!(
        listed["items"].as_array().is_some_and(Vec::is_empty),
        "the session's files are deleted: {listed} (had {})",
        file["id"]
    );
    server.wait_for_log(|line| line["message"] == "deleted expired anonymous sessions")?;
    Ok(())
}

fn disabling_a_user_stops_their_tokens_and_keys_at_once(backend: Backend) -> Result<()> {
    let server = Server::start(backend)?;
    server.create_user("admin@acme.test", "admin", "acme")?;
    server.create_user("leaver@acme.test", "member", "acme")?;
    let admin = Auth::Bearer(server.login("admin@acme.test", USER_PASSWORD)?);
    let leaver = Auth::Bearer(server.login("leaver@acme.test", USER_PASSWORD)?);
    let key = server.expect(
        "POST",
        "/api/api-keys",
        &leaver,
        Some(json!({"name": "k"})),
        201,
    )?;
    let key = Auth::ApiKey(key["key"].as_str().context("key")?.to_owned());
    let users = server.expect("GET", "/api/users", &admin, None, 200)?;
    let leaver_record = users["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|user| user["email"] == "leaver@acme.test")
        .context("leaver")?;
    let path = format!(
        "/api/users/{}/{}",
        leaver_record["org_id"].as_str().unwrap_or_default(),
        leaver_record["id"].as_str().unwrap_or_default()
    );
    server.expect("PATCH", &path, &admin, Some(json!({"disabled": true})), 200)?;
    assert_problem(
        server.call("GET", "/api/auth/me", &leaver, None)?,
        401,
        "unauthenticated",
    )?;
    assert_problem(
        server.call("GET", "/api/auth/me", &key, None)?,
        401,
        "unauthenticated",
    )?;
    assert_problem(
        server.call(
            "POST",
            "/api/auth/login",
            &Auth::None,
            Some(json!({"email": "leaver@acme.test", "password": USER_PASSWORD})),
        )?,
        401,
        "unauthenticated",
    )?;
    // The password action, then re-enabling, lets them back in with the new password.
    server.expect(
        "POST",
        &format!("{path}/password"),
        &admin,
        Some(json!({"password": "a brand new password"})),
        200,
    )?;
    assert_problem(
        server.call(
            "POST",
            &format!("{path}/password"),
            &admin,
            Some(json!({"password": "short"})),
        )?,
        422,
        "validation_failed",
    )?;
    server.expect(
        "PATCH",
        &path,
        &admin,
        Some(json!({"disabled": false})),
        200,
    )?;
    server.login("leaver@acme.test", "a brand new password")?;
    // Only a superuser may change a superuser, even an admin of the same organisation.
    server.create_user("admin@default.test", "admin", "default")?;
    let default_admin = Auth::Bearer(server.login("admin@default.test", USER_PASSWORD)?);
    let root_me = server.expect(
        "GET",
        "/api/auth/me",
        &Auth::Bearer(server.root_token()?),
        None,
        200,
    )?;
    let root_path = format!(
        "/api/users/{}/{}",
        root_me["org"]["id"].as_str().unwrap_or_default(),
        root_me["user"]["id"].as_str().unwrap_or_default()
    );
    assert_problem(
        server.call(
            "PATCH",
            &root_path,
            &default_admin,
            Some(json!({"disabled": true})),
        )?,
        403,
        "forbidden",
    )?;
    ensure!(
        server
            .call("PATCH", &root_path, &admin, Some(json!({"disabled": true})))?
            .status()
            == 404,
        "another org's superuser is not found"
    );
    Ok(())
}

fn state_changes_are_audited_and_the_trail_is_scoped(backend: Backend) -> Result<()> {
    let server = Server::start(backend)?;
    server.create_user("admin@acme.test", "admin", "acme")?;
    server.create_user("member@acme.test", "member", "acme")?;
    server.create_user("admin@globex.test", "admin", "globex")?;
    let admin = Auth::Bearer(server.login("admin@acme.test", USER_PASSWORD)?);
    let member = Auth::Bearer(server.login("member@acme.test", USER_PASSWORD)?);
    let globex = Auth::Bearer(server.login("admin@globex.test", USER_PASSWORD)?);

    let created = server
        .client()
        .post(server.url("/api/settings"))
        .bearer_auth(match &admin {
            Auth::Bearer(t) => t.as_str(),
            _ => "",
        })
        .header("X-Request-Id", "audit-create-1")
        .json(&json!({"key": "k", "value": 1}))
        .send()?;
    ensure!(created.status() == 201);
    let created: Value = created.json()?;
    let denied = server
        .client()
        .post(server.url("/api/settings"))
        .bearer_auth(match &member {
            Auth::Bearer(t) => t.as_str(),
            _ => "",
        })
        .header("X-Request-Id", "audit-denied-1")
        .json(&json!({"key": "m", "value": 1}))
        .send()?;
    ensure!(denied.status() == 403);
    server.expect(
        "POST",
        "/api/settings",
        &globex,
        Some(json!({"key": "g", "value": 1})),
        201,
    )?;

    let trail = server.expect("GET", "/api/audit?limit=200", &admin, None, 200)?;
    let events = trail["items"].as_array().context("items")?;
    let event = events
        .iter()
        .find(|event| event["request_id"] == "audit-create-1")
        .context("the create is audited")?;
    ensure!(
        event["action"] == "create"
            && event["resource"] == "settings"
            && event["outcome"] == "success",
        "{event}"
    );
    ensure!(
        event["resource_id"] == created["id"]
            && event["org_id"] == created["org_id"]
            && event["actor_kind"] == "user",
        "{event}"
    );
    ensure!(
        event["actor_user_id"].is_string() && event["created_at"].is_string(),
        "{event}"
    );
    let denial = events
        .iter()
        .find(|event| event["request_id"] == "audit-denied-1")
        .context("the denial is audited")?;
    ensure!(
        denial["outcome"] == "denied" && denial["detail"]["status"] == 403,
        "{denial}"
    );
    ensure!(events.iter().any(|event| event["action"] == "login"
        && event["outcome"] == "success"
        && event["actor_user_id"].is_string()));
    ensure!(
        events
            .iter()
            .all(|event| event["org_id"] == created["org_id"]),
        "admins see their own organisation only"
    );

    assert_problem(
        server.call("GET", "/api/audit", &member, None)?,
        403,
        "forbidden",
    )?;
    let all = server.expect(
        "GET",
        "/api/audit?limit=200",
        &Auth::Bearer(server.root_token()?),
        None,
        200,
    )?;
    let orgs: std::collections::BTreeSet<String> = all["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|event| event["org_id"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        orgs.len() >= 3,
        "superusers see every organisation: {orgs:?}"
    );
    Ok(())
}
