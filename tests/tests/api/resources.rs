//! The generated resource routes: who may do what, tenant isolation, validation,
//! `_meta` and pagination, on both backends.

use anyhow::{Context, Result, ensure};
use metamorph_tests::{Auth, Backend, Server, USER_PASSWORD, assert_problem, on_both_backends};
use serde_json::{Value, json};

/// The six identities of the matrix.
struct Cast {
    owner: Auth,
    member: Auth,
    other_org: Auth,
    demo: Auth,
    anonymous: Auth,
    nobody: Auth,
}

impl Cast {
    /// Organisation `acme` gets an admin (the owner of the records), a member and a demo
    /// user; `globex` gets an admin; plus an anonymous session and no credentials at all.
    fn assemble(server: &Server) -> Result<Self> {
        for (email, role, org) in [
            ("owner@acme.test", "admin", "acme"),
            ("member@acme.test", "member", "acme"),
            ("demo@acme.test", "demo", "acme"),
            ("admin@globex.test", "admin", "globex"),
        ] {
            server.create_user(email, role, org)?;
        }
        let bearer = |email: &str| server.login(email, USER_PASSWORD).map(Auth::Bearer);
        let session = server.expect("POST", "/api/anon/session", &Auth::None, None, 201)?;
        Ok(Self {
            owner: bearer("owner@acme.test")?,
            member: bearer("member@acme.test")?,
            other_org: bearer("admin@globex.test")?,
            demo: bearer("demo@acme.test")?,
            anonymous: Auth::Bearer(session["token"].as_str().context("token")?.to_owned()),
            nobody: Auth::None,
        })
    }

    fn all(&self) -> [(&'static str, &Auth); 6] {
        [
            ("owner", &self.owner),
            ("member", &self.member),
            ("other org", &self.other_org),
            ("demo", &self.demo),
            ("anonymous", &self.anonymous),
            ("no credentials", &self.nobody),
        ]
    }
}

/// Expected statuses, in the order of [`Cast::all`]: owner, member, other org, demo,
/// anonymous, no credentials.
struct Expected {
    list: [u16; 6],
    create: [u16; 6],
    get: [u16; 6],
    patch: [u16; 6],
    delete: [u16; 6],
}

/// How to make and change a record of a resource; `n` keeps unique fields unique.
struct Sample {
    name: &'static str,
    create: fn(usize) -> Value,
    patch: Value,
    expected: Expected,
}

fn samples() -> Vec<Sample> {
    vec![
        Sample {
            name: "users",
            create: |n| json!({"email": format!("made{n}@acme.test"), "password": "a fine password"}),
            patch: json!({"display_name": "Renamed"}),
            expected: Expected {
                list: [200, 403, 200, 403, 403, 401],
                create: [201, 403, 201, 403, 403, 401],
                get: [200, 403, 404, 403, 404, 401],
                patch: [200, 403, 404, 403, 404, 401],
                delete: [204, 403, 404, 403, 404, 401],
            },
        },
        Sample {
            name: "settings",
            create: |n| json!({"key": format!("key-{n}"), "value": {"n": n}}),
            patch: json!({"value": "changed"}),
            expected: Expected {
                list: [200, 200, 200, 200, 403, 401],
                create: [201, 403, 201, 403, 403, 401],
                get: [200, 200, 404, 200, 404, 401],
                patch: [200, 403, 404, 403, 404, 401],
                delete: [204, 403, 404, 403, 404, 401],
            },
        },
        Sample {
            name: "feature-flags",
            create: |n| json!({"name": format!("flag-{n}"), "enabled": true}),
            patch: json!({"enabled": false}),
            expected: Expected {
                list: [200, 200, 200, 200, 200, 401],
                create: [201, 403, 201, 403, 403, 401],
                get: [200, 200, 404, 200, 404, 401],
                patch: [200, 403, 404, 403, 404, 401],
                delete: [204, 403, 404, 403, 404, 401],
            },
        },
        Sample {
            name: "files",
            create: |n| json!({"filename": format!("report-{n}.pdf"), "content_type": "application/pdf"}),
            patch: json!({"visibility": "org"}),
            expected: Expected {
                list: [200, 200, 200, 200, 200, 401],
                create: [201, 201, 201, 403, 201, 401],
                get: [200, 200, 404, 200, 404, 401],
                patch: [200, 200, 404, 403, 404, 401],
                delete: [204, 204, 404, 403, 404, 401],
            },
        },
        Sample {
            name: "conversion-jobs",
            create: |n| json!({"tag": format!("job-{n}"), "process": false, "conversions": [{"target": "pdf"}]}),
            patch: json!({"tag": "renamed"}),
            expected: Expected {
                list: [200, 200, 200, 200, 200, 401],
                create: [201, 201, 201, 403, 201, 401],
                get: [200, 200, 404, 200, 404, 401],
                patch: [200, 200, 404, 403, 404, 401],
                delete: [204, 204, 404, 403, 404, 401],
            },
        },
        Sample {
            name: "destinations",
            create: |n| {
                json!({"name": format!("bucket-{n}"), "type": "s3", "parameters": {"bucket": "b"},
                       "credentials": {"access_key_id": "AK", "secret_access_key": "very secret"}})
            },
            patch: json!({"parameters": {"bucket": "c"}}),
            expected: Expected {
                list: [200, 200, 200, 200, 200, 401],
                create: [201, 403, 201, 403, 201, 401],
                get: [200, 200, 404, 200, 404, 401],
                patch: [200, 403, 404, 403, 404, 401],
                delete: [204, 403, 404, 403, 404, 401],
            },
        },
    ]
}

on_both_backends!(
    every_resource_answers_each_identity_with_the_declared_status,
    invalid_bodies_are_422_with_the_paths_of_the_failing_fields,
    meta_describes_each_resource_as_the_callers_role_sees_it,
    pagination_walks_250_items_with_no_duplicate_and_no_gap,
);

fn every_resource_answers_each_identity_with_the_declared_status(backend: Backend) -> Result<()> {
    let server = Server::start(backend)?;
    let cast = Cast::assemble(&server)?;
    let counter = std::cell::Cell::new(0_usize);
    let next = || {
        counter.set(counter.get() + 1);
        counter.get()
    };
    let fresh = |sample: &Sample| -> Result<(String, String)> {
        let record = server.expect(
            "POST",
            &format!("/api/{}", sample.name),
            &cast.owner,
            Some((sample.create)(next())),
            201,
        )?;
        let org = record["org_id"].as_str().context("org_id")?.to_owned();
        let id = record["id"].as_str().context("id")?.to_owned();
        Ok((org, id))
    };
    let mut failures = Vec::new();
    let mut check = |what: String, actual: u16, expected: u16| {
        if actual != expected {
            failures.push(format!("{what}: expected {expected}, got {actual}"));
        }
    };
    for sample in samples() {
        let base = format!("/api/{}", sample.name);
        let (org, id) = fresh(&sample)?;
        let item = format!("{base}/{org}/{id}");
        for (i, (who, auth)) in cast.all().into_iter().enumerate() {
            let response = server.call("GET", &base, auth, None)?;
            let status = response.status().as_u16();
            check(
                format!("{who} lists {}", sample.name),
                status,
                sample.expected.list[i],
            );
            if status == 200 {
                let page: Value = response.json()?;
                let sees_it = page["items"]
                    .as_array()
                    .is_some_and(|items| items.iter().any(|item| item["id"] == id.as_str()));
                let same_org = matches!(who, "owner" | "member" | "demo");
                check(
                    format!("{who} sees acme's record in the {} list", sample.name),
                    u16::from(sees_it),
                    u16::from(same_org),
                );
            }

            let created = server.call("POST", &base, auth, Some((sample.create)(next())))?;
            check(
                format!("{who} creates {}", sample.name),
                created.status().as_u16(),
                sample.expected.create[i],
            );

            check(
                format!("{who} gets a {} record", sample.name),
                server.call("GET", &item, auth, None)?.status().as_u16(),
                sample.expected.get[i],
            );
            check(
                format!("{who} patches a {} record", sample.name),
                server
                    .call("PATCH", &item, auth, Some(sample.patch.clone()))?
                    .status()
                    .as_u16(),
                sample.expected.patch[i],
            );
            let (victim_org, victim) = fresh(&sample)?;
            let deleted = server
                .call(
                    "DELETE",
                    &format!("{base}/{victim_org}/{victim}"),
                    auth,
                    None,
                )?
                .status()
                .as_u16();
            check(
                format!("{who} deletes a {} record", sample.name),
                deleted,
                sample.expected.delete[i],
            );
            let still_there = server
                .call(
                    "GET",
                    &format!("{base}/{victim_org}/{victim}"),
                    &cast.owner,
                    None,
                )?
                .status()
                .as_u16();
            check(
                format!("after {who}'s delete, the {} record exists", sample.name),
                u16::from(still_there == 200),
                u16::from(deleted != 204),
            );
        }
        // Another organisation's id under one's own organisation is not found either.
        let other_path = format!("{base}/{}/{id}", "some-other-org");
        check(
            format!("owner gets {} under a foreign org", sample.name),
            server
                .call("GET", &other_path, &cast.owner, None)?
                .status()
                .as_u16(),
            404,
        );
    }
    ensure!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

fn invalid_bodies_are_422_with_the_paths_of_the_failing_fields(backend: Backend) -> Result<()> {
    let server = Server::start(backend)?;
    let root = Auth::Bearer(server.root_token()?);
    let cases = [
        (
            "settings",
            json!({"key": "Not A Key", "value": 1, "id": "mine"}),
            vec!["/id", "/key"],
        ),
        (
            "feature-flags",
            json!({"enabled": "yes"}),
            vec!["", "/enabled"],
        ),
        (
            "files",
            json!({"filename": "../etc/passwd", "visibility": "everyone"}),
            vec!["/filename", "/visibility"],
        ),
        (
            "conversion-jobs",
            json!({"callback_url": "not a url", "conversions": [{"options": {}}]}),
            vec!["/callback_url", "/conversions/0"],
        ),
        (
            "destinations",
            json!({"name": "x", "type": "floppy", "parameters": []}),
            vec!["/parameters", "/type"],
        ),
        (
            "users",
            json!({"email": "not-an-email", "password": "short", "shoe_size": 42}),
            vec!["/email", "/password", "/shoe_size"],
        ),
    ];
    for (resource, body, paths) in cases {
        let problem = assert_problem(
            server.call("POST", &format!("/api/{resource}"), &root, Some(body))?,
            422,
            "validation_failed",
        )?;
        let mut found: Vec<String> = problem["errors"]
            .as_array()
            .context("errors[]")?
            .iter()
            .map(|error| error["path"].as_str().unwrap_or_default().to_owned())
            .collect();
        found.dedup();
        ensure!(
            found == paths,
            "{resource}: expected paths {paths:?}, got {found:?} in {problem}"
        );
    }
    // Malformed JSON is a 400, not a 422.
    let response = server
        .client()
        .post(server.url("/api/settings"))
        .bearer_auth(match &root {
            Auth::Bearer(token) => token.as_str(),
            _ => "",
        })
        .header("content-type", "application/json")
        .body("{\"key\": ")
        .send()?;
    let problem = assert_problem(response, 400, "invalid_json")?;
    ensure!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("line 1"),
        "{problem}"
    );
    // A duplicate unique field is a conflict.
    server.expect(
        "POST",
        "/api/settings",
        &root,
        Some(json!({"key": "once", "value": 1})),
        201,
    )?;
    assert_problem(
        server.call(
            "POST",
            "/api/settings",
            &root,
            Some(json!({"key": "once", "value": 2})),
        )?,
        409,
        "conflict",
    )?;
    // Secrets are accepted but never shown.
    let destination = server.expect(
        "POST",
        "/api/destinations",
        &root,
        Some(json!({"name": "d", "type": "s3", "parameters": {"bucket": "b"}, "credentials": {"access_key_id": "AK", "secret_access_key": "hush"}})),
        201,
    )?;
    ensure!(
        destination.get("credentials").is_none() && destination["has_credentials"] == true,
        "{destination}"
    );
    ensure!(!destination.to_string().contains("hush"));
    let user = server.expect(
        "POST",
        "/api/users",
        &root,
        Some(json!({"email": "pw@acme.test", "password": "a fine password"})),
        201,
    )?;
    ensure!(
        user.get("password").is_none() && !user.to_string().contains("argon2"),
        "{user}"
    );
    Ok(())
}

fn meta_describes_each_resource_as_the_callers_role_sees_it(backend: Backend) -> Result<()> {
    let server = Server::start(backend)?;
    let cast = Cast::assemble(&server)?;
    let root = Auth::Bearer(server.root_token()?);

    let index = server.expect("GET", "/api/_meta", &cast.member, None, 200)?;
    let names: Vec<&str> = index["resources"]
        .as_array()
        .context("resources")?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    ensure!(
        names
            == [
                "users",
                "settings",
                "feature-flags",
                "files",
                "conversion-jobs",
                "destinations"
            ],
        "{names:?}"
    );
    ensure!(index["resources"][0]["path"] == "/api/users");
    ensure!(index["role"] == "member");

    // destinations: admins see and write parameters and may write credentials; members see
    // neither, and may write nothing.
    let admin = server.expect("GET", "/api/_meta/destinations", &cast.owner, None, 200)?;
    let member = server.expect("GET", "/api/_meta/destinations", &cast.member, None, 200)?;
    let admin_props = &admin["schema"]["properties"];
    let member_props = &member["schema"]["properties"];
    ensure!(
        admin_props["parameters"].is_object()
            && admin_props["parameters"].get("readOnly").is_none(),
        "{admin_props}"
    );
    ensure!(
        admin_props["credentials"]["writeOnly"] == true,
        "{admin_props}"
    );
    ensure!(
        member_props.get("parameters").is_none(),
        "members do not see parameters: {member_props}"
    );
    ensure!(
        member_props.get("credentials").is_none(),
        "members may not write credentials: {member_props}"
    );
    ensure!(
        member_props["name"]["readOnly"] == true,
        "members may not write: {member_props}"
    );
    ensure!(
        admin["permissions"]
            == json!({"read": true, "create": true, "update": true, "delete": true})
    );
    ensure!(
        member["permissions"]
            == json!({"read": true, "create": false, "update": false, "delete": false})
    );
    ensure!(admin["list_columns"] == json!(["name", "type", "has_credentials", "updated_at"]));
    ensure!(
        admin["schema"].get("x-metamorph").is_none(),
        "annotations are not shown"
    );

    // users: only superusers may set `role`; the password action is for admins.
    let as_admin = server.expect("GET", "/api/_meta/users", &cast.owner, None, 200)?;
    let as_root = server.expect("GET", "/api/_meta/users", &root, None, 200)?;
    ensure!(
        as_admin["schema"]["properties"]["role"]["readOnly"] == true,
        "{}",
        as_admin["schema"]["properties"]["role"]
    );
    ensure!(
        as_root["schema"]["properties"]["role"]
            .get("readOnly")
            .is_none()
    );
    ensure!(
        as_admin["actions"][0]["name"] == "password" && as_admin["actions"][0]["allowed"] == true
    );
    let as_member = server.expect("GET", "/api/_meta/users", &cast.member, None, 200)?;
    ensure!(
        as_member["schema"]["properties"]
            .as_object()
            .is_some_and(serde_json::Map::is_empty),
        "members see no user field"
    );
    ensure!(as_member["actions"][0]["allowed"] == false);

    // Without credentials: everything read-only, no permission.
    let anonymous_view = server.expect("GET", "/api/_meta/settings", &Auth::None, None, 200)?;
    ensure!(anonymous_view["role"].is_null() && anonymous_view["permissions"]["read"] == false);
    assert_problem(
        server.call("GET", "/api/_meta/nonsense", &cast.owner, None)?,
        404,
        "not_found",
    )?;

    // What _meta says is what the API does: an admin setting `role` is refused.
    let refused = server.call(
        "POST",
        "/api/users",
        &cast.owner,
        Some(json!({"email": "x@acme.test", "role": "admin"})),
    )?;
    assert_problem(refused, 403, "forbidden")?;
    let made = server.expect(
        "POST",
        "/api/users",
        &root,
        Some(json!({"email": "y@acme.test", "role": "admin"})),
        201,
    )?;
    ensure!(made["role"] == "admin");
    Ok(())
}

fn pagination_walks_250_items_with_no_duplicate_and_no_gap(backend: Backend) -> Result<()> {
    let server = Server::start(backend)?;
    let root = Auth::Bearer(server.root_token()?);
    let mut created = Vec::new();
    for n in 0..250 {
        let flag = server.expect(
            "POST",
            "/api/feature-flags",
            &root,
            Some(json!({"name": format!("f{n:03}")})),
            201,
        )?;
        created.push(flag["id"].as_str().context("id")?.to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/feature-flags?limit=40&cursor={cursor}"),
            None => "/api/feature-flags?limit=40".to_owned(),
        };
        let page = server.expect("GET", &path, &root, None, 200)?;
        let items = page["items"].as_array().context("items")?;
        ensure!(items.len() <= 40);
        seen.extend(
            items
                .iter()
                .map(|item| item["id"].as_str().unwrap_or_default().to_owned()),
        );
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        ensure!(pages < 20, "pagination does not end");
    }
    ensure!(
        pages == 7,
        "250 items in pages of 40 is 7 pages, got {pages}"
    );
    ensure!(
        seen == created,
        "the walk must return every item once, in creation order"
    );

    // A limit over the cap is lowered, garbage is refused.
    let capped = server.expect("GET", "/api/feature-flags?limit=100000", &root, None, 200)?;
    ensure!(capped["items"].as_array().map(Vec::len) == Some(200));
    assert_problem(
        server.call("GET", "/api/feature-flags?limit=zero", &root, None)?,
        400,
        "bad_request",
    )?;
    assert_problem(
        server.call("GET", "/api/feature-flags?cursor=forged", &root, None)?,
        400,
        "bad_request",
    )?;
    Ok(())
}
