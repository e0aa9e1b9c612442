//! Uploads and downloads through the running service, on both databases and on fs and S3
//! storage: bytes stream in and out intact, formats are sniffed from the bytes, ranges and conditional requests
//! are honoured, links are signed and expire, limits and quotas refuse what does not fit
//! and leave nothing behind.

use std::io::Read;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use metamorph_tests::{
    Auth, Server, Setup, USER_PASSWORD, assert_problem, corpus, header, on_every_backend,
};
use serde_json::{Value, json};

on_every_backend!(
    an_upload_streams_in_and_comes_out_whole_in_ranges_and_by_link,
    uploads_past_a_limit_are_refused_and_leave_nothing_behind,
    download_limits_and_link_expiry_are_enforced,
    shares_follow_their_visibility_and_die_when_the_file_is_made_private,
);

/// The SHA-256 of a file, by `sha256sum`.
fn sha256sum(path: &std::path::Path) -> Result<String> {
    let output = Command::new("sha256sum").arg(path).output()?;
    ensure!(output.status.success(), "sha256sum failed");
    Ok(String::from_utf8(output.stdout)?
        .split_whitespace()
        .next()
        .context("sha256sum output")?
        .to_owned())
}

/// Announces and uploads `bytes` as `filename`; returns the stored record.
pub(crate) fn upload(server: &Server, auth: &Auth, filename: &str, bytes: &[u8]) -> Result<Value> {
    let ticket = server.expect(
        "POST",
        "/api/uploads/init",
        auth,
        Some(json!({"filename": filename, "size": bytes.len()})),
        201,
    )?;
    let response = put(
        server,
        auth,
        &ticket,
        reqwest::blocking::Body::from(bytes.to_vec()),
    )?;
    let status = response.status().as_u16();
    let text = response.text()?;
    ensure!(status == 200, "upload: {status} {text}");
    Ok(serde_json::from_str(&text)?)
}

fn put(
    server: &Server,
    auth: &Auth,
    ticket: &Value,
    body: reqwest::blocking::Body,
) -> Result<reqwest::blocking::Response> {
    let url = ticket["upload_url"].as_str().context("upload_url")?;
    let mut request = server.client().put(url).body(body);
    if let Auth::Bearer(token) = auth {
        request = request.bearer_auth(token);
    }
    Ok(request.send()?)
}

fn get(
    server: &Server,
    url_or_path: &str,
    auth: &Auth,
    headers: &[(&str, &str)],
) -> Result<reqwest::blocking::Response> {
    let url = if url_or_path.starts_with("http") {
        url_or_path.to_owned()
    } else {
        server.url(url_or_path)
    };
    let mut request = server.client().get(url);
    if let Auth::Bearer(token) = auth {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Ok(request.send()?)
}

fn download_path(record: &Value) -> String {
    format!(
        "/api/files/{}/{}/download",
        record["org_id"].as_str().unwrap_or_default(),
        record["id"].as_str().unwrap_or_default()
    )
}

fn bearer(server: &Server, email: &str, role: &str, org: &str) -> Result<Auth> {
    server.create_user(email, role, org)?;
    Ok(Auth::Bearer(server.login(email, USER_PASSWORD)?))
}

fn an_upload_streams_in_and_comes_out_whole_in_ranges_and_by_link(setup: Setup) -> Result<()> {
    let server = Server::start(setup)?;
    let owner = bearer(&server, "owner@acme.test", "admin", "acme")?;
    let member = bearer(&server, "member@acme.test", "member", "acme")?;
    let stranger = bearer(&server, "admin@globex.test", "admin", "globex")?;
    let path = corpus("image/png-exif.png");
    let bytes = std::fs::read(&path)?;
    let size = bytes.len();

    // A PNG named .jpg: the bytes decide the format.
    let ticket = server.expect(
        "POST",
        "/api/uploads/init",
        &owner,
        Some(json!({"filename": "holiday photo.jpg", "size": size, "content_type": "image/jpeg"})),
        201,
    )?;
    ensure!(ticket["method"] == "PUT", "{ticket}");
    let upload_url = ticket["upload_url"].as_str().context("upload_url")?;
    ensure!(
        upload_url.starts_with(&server.url("/api/uploads/")) && upload_url.ends_with("/data"),
        "{upload_url}"
    );
    // Another organisation cannot send the bytes.
    assert_problem(
        put(&server, &stranger, &ticket, bytes.clone().into())?,
        404,
        "not_found",
    )?;

    let response = put(&server, &owner, &ticket, bytes.clone().into())?;
    ensure!(response.status() == 200, "{}", response.text()?);
    let text = response.text()?;
    ensure!(
        !text.contains("orgs/") && !text.contains("storage_key"),
        "{text}"
    );
    let record: Value = serde_json::from_str(&text)?;
    ensure!(
        record["status"] == "ready" && record["format"] == "png",
        "{record}"
    );
    ensure!(record["size_bytes"] == size, "{record}");
    ensure!(record["sha256"] == sha256sum(&path)?.as_str(), "{record}");
    let org_id = record["org_id"].as_str().context("org_id")?;
    let id = record["id"].as_str().context("id")?;
    let listed = server.expect(
        "GET",
        &format!("/api/files/{org_id}/{id}"),
        &owner,
        None,
        200,
    )?;
    ensure!(
        listed["status"] == "ready" && listed["format"] == "png",
        "{listed}"
    );
    // The same bytes again are refused: a record holds one upload.
    assert_problem(
        put(&server, &owner, &ticket, bytes.clone().into())?,
        409,
        "conflict",
    )?;

    // Whole, with the headers a browser or curl needs.
    let download = download_path(&record);
    let response = get(&server, &download, &owner, &[])?;
    ensure!(response.status() == 200);
    ensure!(header(&response, "content-type") == "image/png");
    ensure!(header(&response, "content-length") == size.to_string());
    ensure!(header(&response, "accept-ranges") == "bytes");
    let disposition = header(&response, "content-disposition");
    ensure!(
        disposition.starts_with("attachment; filename=\"holiday photo.jpg\""),
        "{disposition}"
    );
    let etag = header(&response, "etag");
    ensure!(etag == format!("\"{}\"", sha256sum(&path)?), "{etag}");
    ensure!(
        response.bytes()?.as_ref() == bytes.as_slice(),
        "the bytes differ"
    );

    // Ranges: start, middle, suffix, and one past the end.
    for (range, expected) in [
        ("bytes=0-99", 0..100),
        ("bytes=1000-1999", 1000..2000),
        ("bytes=-50", size - 50..size),
        (&*format!("bytes={}-", size - 10), size - 10..size),
    ] {
        let response = get(&server, &download, &owner, &[("Range", range)])?;
        ensure!(response.status() == 206, "{range}: {}", response.status());
        let content_range = header(&response, "content-range");
        ensure!(
            content_range == format!("bytes {}-{}/{size}", expected.start, expected.end - 1),
            "{range}: {content_range}"
        );
        ensure!(
            response.bytes()?.as_ref() == &bytes[expected],
            "{range}: wrong bytes"
        );
    }
    let unsatisfiable = get(
        &server,
        &download,
        &owner,
        &[("Range", &format!("bytes={size}-"))],
    )?;
    ensure!(header(&unsatisfiable, "content-range") == format!("bytes */{size}"));
    assert_problem(unsatisfiable, 416, "range_not_satisfiable")?;
    let unchanged = get(&server, &download, &owner, &[("If-None-Match", &etag)])?;
    ensure!(unchanged.status() == 304, "{}", unchanged.status());
    // An `If-Range` with another version's tag gets the whole file.
    let stale = get(
        &server,
        &download,
        &owner,
        &[("Range", "bytes=0-9"), ("If-Range", "\"old\"")],
    )?;
    ensure!(stale.status() == 200 && stale.bytes()?.len() == size);
    let head = server
        .client()
        .head(server.url(&download))
        .bearer_auth(match &owner {
            Auth::Bearer(token) => token.as_str(),
            _ => "",
        });
    let head = head.send()?;
    ensure!(head.status() == 200 && header(&head, "content-length") == size.to_string());

    // Private: the owner and admins only; the organisation once shared with it.
    assert_problem(get(&server, &download, &member, &[])?, 404, "not_found")?;
    assert_problem(get(&server, &download, &stranger, &[])?, 404, "not_found")?;
    assert_problem(
        get(&server, &download, &Auth::None, &[])?,
        401,
        "unauthenticated",
    )?;
    let item = format!("/api/files/{org_id}/{id}");
    server.expect(
        "PATCH",
        &item,
        &owner,
        Some(json!({"visibility": "org"})),
        200,
    )?;
    ensure!(get(&server, &download, &member, &[])?.status() == 200);
    assert_problem(get(&server, &download, &stranger, &[])?, 404, "not_found")?;

    // The signed link needs no credentials; altered, or for another file, it is refused.
    let link = record["download_url"].as_str().context("download_url")?;
    ensure!(
        link.starts_with(&server.url(&download)) && link.contains("?dl="),
        "{link}"
    );
    let by_link = get(&server, link, &Auth::None, &[])?;
    ensure!(by_link.status() == 200);
    ensure!(by_link.bytes()?.as_ref() == bytes.as_slice());
    let mut tampered = link.to_owned();
    let last = tampered.pop().context("empty link")?;
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_problem(get(&server, &tampered, &Auth::None, &[])?, 404, "not_found")?;
    let other = upload(&server, &owner, "other.txt", b"another file")?;
    let token = link.split("?dl=").nth(1).context("token")?;
    let elsewhere = format!("{}?dl={token}", download_path(&other));
    assert_problem(
        get(&server, &elsewhere, &Auth::None, &[])?,
        404,
        "not_found",
    )?;
    ensure!(other["format"] == "txt", "{other}");

    // Private again: every link given out before stops working.
    server.expect(
        "PATCH",
        &item,
        &owner,
        Some(json!({"visibility": "private"})),
        200,
    )?;
    assert_problem(get(&server, link, &Auth::None, &[])?, 404, "not_found")?;
    ensure!(get(&server, &download, &owner, &[])?.status() == 200);

    // Deleting the record deletes its bytes.
    let stored = server.stored_objects(org_id)?;
    ensure!(
        stored.len() == 2 && stored.contains(&(id.to_owned(), size as u64)),
        "{stored:?}"
    );
    server.expect("DELETE", &item, &owner, None, 204)?;
    assert_problem(get(&server, &download, &owner, &[])?, 404, "not_found")?;
    let stored = server.stored_objects(org_id)?;
    ensure!(
        stored.len() == 1 && stored.iter().all(|(name, _)| name != id),
        "the deleted file's bytes are still stored: {stored:?}"
    );
    Ok(())
}

fn uploads_past_a_limit_are_refused_and_leave_nothing_behind(setup: Setup) -> Result<()> {
    let server = Server::builder(setup)
        .env("METAMORPH_MAX_UPLOAD_SIZE", "48 KiB")
        .env("METAMORPH_QUOTA_BYTES", "64 KiB")
        .start()?;
    let owner = bearer(&server, "owner@acme.test", "admin", "acme")?;

    // Declared too large for the upload limit: refused before any byte.
    let refused = server.call(
        "POST",
        "/api/uploads/init",
        &owner,
        Some(json!({"filename": "big.bin", "size": 50_000})),
    )?;
    let problem = assert_problem(refused, 413, "payload_too_large")?;
    ensure!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("49152"),
        "{problem}"
    );
    let invalid = server.call(
        "POST",
        "/api/uploads/init",
        &owner,
        Some(json!({"filename": "a/b"})),
    )?;
    assert_problem(invalid, 422, "validation_failed")?;

    // A body longer than declared: 413, nothing stored, and the upload can be retried.
    let ticket = server.expect(
        "POST",
        "/api/uploads/init",
        &owner,
        Some(json!({"filename": "small.bin", "size": 1000})),
        201,
    )?;
    let org_id = ticket["org_id"].as_str().context("org_id")?.to_owned();
    let file_id = ticket["file_id"].as_str().context("file_id")?.to_owned();
    assert_problem(
        put(&server, &owner, &ticket, vec![7u8; 2000].into())?,
        413,
        "payload_too_large",
    )?;
    ensure!(server.stored_objects(&org_id)?.is_empty());
    let record = server.expect(
        "GET",
        &format!("/api/files/{org_id}/{file_id}"),
        &owner,
        None,
        200,
    )?;
    ensure!(record["status"] == "pending", "{record}");
    let response = put(&server, &owner, &ticket, vec![7u8; 1000].into())?;
    ensure!(response.status() == 200, "{}", response.text()?);

    // Streamed without a length (chunked), past the upload limit: cut off.
    let ticket = server.expect(
        "POST",
        "/api/uploads/init",
        &owner,
        Some(json!({"filename": "stream.bin"})),
        201,
    )?;
    let endless = std::io::repeat(1).take(49 * 1024 + 1);
    let response = put(
        &server,
        &owner,
        &ticket,
        reqwest::blocking::Body::new(endless),
    )?;
    assert_problem(response, 413, "payload_too_large")?;
    ensure!(
        server.stored_objects(&org_id)?.len() == 1,
        "a cut-off upload left bytes behind"
    );

    // The quota: 1000 + 40 KiB fit in 64 KiB; 30 KiB more do not, declared or not.
    upload(&server, &owner, "forty.bin", &vec![2u8; 40 * 1024])?;
    let refused = server.call(
        "POST",
        "/api/uploads/init",
        &owner,
        Some(json!({"filename": "thirty.bin", "size": 30 * 1024})),
    )?;
    assert_problem(refused, 413, "quota_exceeded")?;
    let ticket = server.expect(
        "POST",
        "/api/uploads/init",
        &owner,
        Some(json!({"filename": "thirty.bin"})),
        201,
    )?;
    let body = std::io::repeat(3).take(30 * 1024);
    assert_problem(
        put(&server, &owner, &ticket, reqwest::blocking::Body::new(body))?,
        413,
        "quota_exceeded",
    )?;
    ensure!(server.stored_objects(&org_id)?.len() == 2);

    // Abort: the pending file is gone.
    let abort = format!(
        "/api/uploads/{}/abort",
        ticket["file_id"].as_str().unwrap_or_default()
    );
    server.expect("POST", &abort, &owner, None, 204)?;
    assert_problem(
        put(&server, &owner, &ticket, vec![1u8; 10].into())?,
        404,
        "not_found",
    )?;
    assert_problem(server.call("POST", &abort, &owner, None)?, 404, "not_found")?;

    // A client that goes away mid-body: nothing is kept and the upload can be sent again.
    let ticket = server.expect(
        "POST",
        "/api/uploads/init",
        &owner,
        Some(json!({"filename": "dropped.bin"})),
        201,
    )?;
    let Auth::Bearer(token) = &owner else {
        anyhow::bail!("a bearer token was expected");
    };
    let path = format!(
        "/api/uploads/{}/data",
        ticket["file_id"].as_str().unwrap_or_default()
    );
    {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(server.address())?;
        write!(
            stream,
            "PUT {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: 20000\r\n\r\n",
            server.address()
        )?;
        stream.write_all(&[5u8; 300 * 1024][..12_000])?;
        stream.flush()?;
    } // dropped: the connection closes 8000 bytes short
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let retried = loop {
        let response = put(&server, &owner, &ticket, vec![6u8; 100].into())?;
        if response.status() != 409 || std::time::Instant::now() > deadline {
            break response;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    ensure!(retried.status() == 200, "{}", retried.text()?);
    let stored = server.stored_objects(&org_id)?;
    ensure!(stored.len() == 3, "{stored:?}");
    let sizes: Vec<u64> = stored.iter().map(|(_, size)| *size).collect();
    ensure!(
        !sizes.contains(&12_000),
        "the dropped upload's bytes were kept: {sizes:?}"
    );
    ensure!(server.get("/api/health")?.status() == 200);
    Ok(())
}

fn download_limits_and_link_expiry_are_enforced(setup: Setup) -> Result<()> {
    let server = Server::builder(setup)
        .env("METAMORPH_DOWNLOAD_LINK_TTL", "2s")
        .start()?;
    let owner = bearer(&server, "owner@acme.test", "admin", "acme")?;
    let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let record = upload(&server, &owner, "limited.bin", &bytes)?;
    let item = format!(
        "/api/files/{}/{}",
        record["org_id"].as_str().unwrap_or_default(),
        record["id"].as_str().unwrap_or_default()
    );
    let patched = server.expect(
        "PATCH",
        &item,
        &owner,
        Some(json!({"max_downloads": 2})),
        200,
    )?;
    ensure!(patched["max_downloads"] == 2, "{patched}");
    let download = download_path(&record);
    ensure!(get(&server, &download, &owner, &[])?.status() == 200);
    // Resuming from the middle does not count as another download.
    ensure!(get(&server, &download, &owner, &[("Range", "bytes=5000-")])?.status() == 206);
    ensure!(get(&server, &download, &owner, &[])?.status() == 200);
    assert_problem(
        get(&server, &download, &owner, &[])?,
        410,
        "download_limit_reached",
    )?;
    let counted = server.expect("GET", &item, &owner, None, 200)?;
    ensure!(counted["download_count"] == 2, "{counted}");

    let fresh = upload(&server, &owner, "fresh.bin", &bytes)?;
    let link = fresh["download_url"]
        .as_str()
        .context("download_url")?
        .to_owned();
    ensure!(get(&server, &link, &Auth::None, &[])?.status() == 200);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let expired = assert_problem(get(&server, &link, &Auth::None, &[])?, 404, "not_found")?;
    ensure!(
        expired["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{expired}"
    );
    Ok(())
}

fn shares_follow_their_visibility_and_die_when_the_file_is_made_private(
    setup: Setup,
) -> Result<()> {
    let server = Server::start(setup)?;
    let owner = bearer(&server, "owner@acme.test", "admin", "acme")?;
    let member = bearer(&server, "member@acme.test", "member", "acme")?;
    let stranger = bearer(&server, "admin@globex.test", "admin", "globex")?;
    let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let record = upload(&server, &member, "notes.bin", &bytes)?;
    let share = format!(
        "/api/files/{}/{}/share",
        record["org_id"].as_str().unwrap_or_default(),
        record["id"].as_str().unwrap_or_default()
    );
    let download = download_path(&record);

    // Public: anyone with the link, ranges included.
    let public = server.expect(
        "POST",
        &share,
        &member,
        Some(json!({"visibility": "public"})),
        200,
    )?;
    ensure!(
        public["visibility"] == "public" && public["expires_at"].is_null(),
        "{public}"
    );
    let link = public["share_url"]
        .as_str()
        .context("share_url")?
        .to_owned();
    ensure!(link.starts_with(&server.url("/api/s/")), "{link}");
    let anyone = get(&server, &link, &Auth::None, &[])?;
    ensure!(anyone.status() == 200 && anyone.bytes()?.as_ref() == bytes.as_slice());
    let part = get(&server, &link, &Auth::None, &[("Range", "bytes=-10")])?;
    ensure!(part.status() == 206 && part.bytes()?.as_ref() == &bytes[4990..]);

    // Restricted: the same link now needs a signed-in member of the organisation.
    server.expect(
        "POST",
        &share,
        &owner,
        Some(json!({"visibility": "restricted"})),
        200,
    )?;
    assert_problem(
        get(&server, &link, &Auth::None, &[])?,
        401,
        "unauthenticated",
    )?;
    assert_problem(get(&server, &link, &stranger, &[])?, 404, "not_found")?;
    ensure!(get(&server, &link, &member, &[])?.status() == 200);
    // Only the owner and admins share; another organisation does not see the file.
    let other = bearer(&server, "other@acme.test", "member", "acme")?;
    assert_problem(get(&server, &download, &other, &[])?, 404, "not_found")?;
    ensure!(get(&server, &link, &other, &[])?.status() == 200);
    for (who, body, status, code) in [
        (&other, json!({"visibility": "public"}), 403, "forbidden"),
        (&stranger, json!({"visibility": "public"}), 404, "not_found"),
        (
            &owner,
            json!({"visibility": "public", "expires_in": 0}),
            422,
            "validation_failed",
        ),
    ] {
        assert_problem(server.call("POST", &share, who, Some(body))?, status, code)?;
    }

    // Org: every member downloads it without a link.
    server.expect(
        "POST",
        &share,
        &owner,
        Some(json!({"visibility": "org"})),
        200,
    )?;
    ensure!(get(&server, &download, &other, &[])?.status() == 200);

    // Private: no link, and every link given before is dead, even for the owner.
    let private = server.expect(
        "POST",
        &share,
        &member,
        Some(json!({"visibility": "private"})),
        200,
    )?;
    ensure!(private["share_url"].is_null(), "{private}");
    assert_problem(get(&server, &link, &member, &[])?, 404, "not_found")?;
    server.expect(
        "POST",
        &share,
        &member,
        Some(json!({"visibility": "public"})),
        200,
    )?;
    assert_problem(get(&server, &link, &Auth::None, &[])?, 404, "not_found")?;

    // A link with an expiry stops at it.
    let brief = server.expect(
        "POST",
        &share,
        &member,
        Some(json!({"visibility": "public", "expires_in": 1})),
        200,
    )?;
    ensure!(brief["expires_at"].is_string(), "{brief}");
    let brief = brief["share_url"].as_str().context("share_url")?.to_owned();
    ensure!(get(&server, &brief, &Auth::None, &[])?.status() == 200);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_problem(get(&server, &brief, &Auth::None, &[])?, 404, "not_found")?;
    assert_problem(
        get(&server, "/api/s/not-a-token", &Auth::None, &[])?,
        404,
        "not_found",
    )?;
    Ok(())
}
