//! Conversion jobs through the running service, on both databases and on fs and S3
//! storage: one-shot and step by
//! step, polled and waited for, retried and canceled, idempotent, cached, refused when the
//! queue is full, with remote inputs behind the address guard and signed callbacks to a
//! receiver on loopback. On PostgreSQL, two servers share one queue and one of them is
//! killed mid-work.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use metamorph_tests::{
    Auth, Backend, Server, Setup, assert_problem, corpus, header, on_every_backend,
};
use serde_json::{Value, json};

use super::transfers::upload;

on_every_backend!(
    a_one_shot_conversion_makes_every_target,
    a_job_built_in_steps_converts_every_input_to_every_target,
    failures_fail_fast_or_leave_the_rest_done,
    a_remote_input_is_fetched_and_a_failed_job_retried,
    jobs_are_canceled_and_then_deleted,
    an_idempotency_key_makes_creation_safe_to_repeat,
    callbacks_are_signed_retried_stopped_by_410_and_replayed,
    the_same_conversion_runs_once_and_a_full_queue_answers_429,
    a_job_survives_a_killed_server,
    limits_bound_time_inputs_and_downloads,
    usage_counts_what_storage_holds,
    a_job_whose_outputs_cannot_fit_is_refused_before_it_is_queued;
    // Refused before any byte is fetched: nothing reaches the storage.
    fs_only: a_remote_input_that_never_arrives_times_out, private_addresses_are_refused,
);

mod postgres_only {
    #[test]
    fn two_servers_share_one_queue_and_lose_nothing_when_one_is_killed() -> anyhow::Result<()> {
        super::two_servers_share_one_queue(metamorph_tests::Backend::Postgres)
    }
}

const IMAGE_PLUGINS: &[&str] = &["metamorph_plugin_image.wasm", "metamorph_plugin_data.wasm"];

pub(super) fn anonymous(server: &Server) -> Result<Auth> {
    let session = server.expect("POST", "/api/anon/session", &Auth::None, None, 201)?;
    Ok(Auth::Bearer(
        session["token"].as_str().context("token")?.to_owned(),
    ))
}

/// Creates a job: 201 and its JSON.
fn create_job(server: &Server, auth: &Auth, body: Value) -> Result<Value> {
    server.expect("POST", "/api/conversion-jobs", auth, Some(body), 201)
}

fn job_path(job: &Value) -> String {
    format!(
        "/api/conversion-jobs/{}/{}",
        job["org_id"].as_str().unwrap_or_default(),
        job["id"].as_str().unwrap_or_default()
    )
}

/// Polls the job until it ends: 202 while it runs, then 200.
pub(super) fn wait_done(server: &Server, auth: &Auth, job: &Value) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = server.call("GET", &job_path(job), auth, None)?;
        let status = response.status().as_u16();
        let body: Value = response.json()?;
        let code = body["status"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match (status, code.as_str()) {
            (200, "completed" | "failed" | "canceled") => return Ok(body),
            (202, "queued" | "processing") => {}
            _ => bail!("GET job: {status} with status {code}: {body}"),
        }
        ensure!(Instant::now() < deadline, "the job did not end: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends the one-shot form.
pub(super) fn convert_form(
    server: &Server,
    auth: &Auth,
    path: &std::path::Path,
    fields: &[(&str, &str)],
    query: &str,
    headers: &[(&str, &str)],
) -> Result<reqwest::blocking::Response> {
    let mut form = reqwest::blocking::multipart::Form::new().file("file", path)?;
    for (name, value) in fields {
        form = form.text((*name).to_owned(), (*value).to_owned());
    }
    let mut request = server
        .client()
        .post(server.url(&format!("/api/convert{query}")))
        .multipart(form);
    if let Auth::Bearer(token) = auth {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Ok(request.send()?)
}

/// Downloads an output by its signed link, with no credentials, into a file.
pub(super) fn download(
    server: &Server,
    output: &Value,
    dir: &std::path::Path,
) -> Result<std::path::PathBuf> {
    let url = output["download_url"].as_str().context("download_url")?;
    ensure!(url.contains("/download?dl="), "{url}");
    let response = server.client().get(url).send()?;
    ensure!(response.status() == 200, "download: {}", response.status());
    let path = dir.join(output["filename"].as_str().context("filename")?);
    std::fs::write(&path, response.bytes()?)?;
    Ok(path)
}

/// `identify`'s format name of each target.
fn magick_name(target: &str) -> &str {
    match target {
        "jpg" => "JPEG",
        "png" => "PNG",
        "webp" => "WEBP",
        "gif" => "GIF",
        "bmp" => "BMP",
        other => other,
    }
}

fn a_one_shot_conversion_makes_every_target(setup: Setup) -> Result<()> {
    let server = Server::builder(setup).plugins(IMAGE_PLUGINS).start()?;
    let auth = anonymous(&server)?;
    let input = corpus("image/png-exif.png");
    let (_, width, height) = super::plugins::identify(&input)?;

    // Held until done: 201 with the finished job.
    let response = convert_form(
        &server,
        &auth,
        &input,
        &[("target_format", "jpg"), ("target_format", "webp,gif")],
        "?wait=30",
        &[],
    )?;
    ensure!(response.status() == 201, "{}", response.status());
    let location = header(&response, "location");
    let job: Value = response.json()?;
    ensure!(location == job_path(&job), "{location}");
    ensure!(job["status"]["code"] == "completed", "{job}");
    let outputs = job["outputs"].as_array().context("outputs")?;
    ensure!(outputs.len() == 3, "{job}");
    let dir = tempfile::tempdir()?;
    for output in outputs {
        let target = output["target"].as_str().context("target")?;
        let path = download(&server, output, dir.path())?;
        let (kind, w, h) = super::plugins::identify(&path)?;
        ensure!(
            kind.starts_with(magick_name(target)),
            "{target}: identify says {kind}"
        );
        ensure!((w, h) == (width, height), "{target}: {w}×{h}");
        ensure!(
            output["size"] == std::fs::metadata(&path)?.len(),
            "{output}"
        );
        ensure!(
            output["filename"] == format!("png-exif.{target}"),
            "{output}"
        );
    }

    // Without `wait`: 202 at once, then polled (202 while it runs, 200 at the end).
    let response = convert_form(
        &server,
        &auth,
        &corpus("image/bmp-rgb24.bmp"),
        &[("target_format", "png"), ("options", r#"{"width": 16}"#)],
        "",
        &[],
    )?;
    ensure!(response.status() == 202, "{}", response.status());
    let job: Value = response.json()?;
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "completed", "{done}");
    let path = download(&server, &done["outputs"][0], dir.path())?;
    let (kind, w, _) = super::plugins::identify(&path)?;
    ensure!(kind == "PNG" && w == 16, "{kind} {w}");

    // Bad requests are problem documents, and nothing is kept of them.
    for (fields, query, status, code) in [
        (
            vec![("target_format", "xyz")],
            "",
            400,
            "unsupported_conversion",
        ),
        (vec![], "", 422, "validation_failed"),
        (
            vec![("target_format", "jpg"), ("options", "{not json")],
            "",
            422,
            "validation_failed",
        ),
        (
            vec![("target_format", "jpg"), ("options", r#"{"quality": 500}"#)],
            "",
            422,
            "invalid_options",
        ),
        (
            vec![("target_format", "jpg")],
            "?wait=61",
            422,
            "validation_failed",
        ),
    ] {
        let response = convert_form(&server, &auth, &input, &fields, query, &[])?;
        assert_problem(response, status, code)?;
    }
    let files = server.expect("GET", "/api/files", &auth, None, 200)?;
    ensure!(
        files["items"].as_array().map(Vec::len) == Some(2 + 3 + 1),
        "only the two inputs and four outputs stay: {files}"
    );
    Ok(())
}

fn a_job_built_in_steps_converts_every_input_to_every_target(setup: Setup) -> Result<()> {
    let server = Server::builder(setup).plugins(IMAGE_PLUGINS).start()?;
    let auth = anonymous(&server)?;
    let stored = upload(
        &server,
        &auth,
        "scan.gif",
        &std::fs::read(corpus("image/gif-static.gif"))?,
    )?;

    // Step 1: an open job.
    let job = create_job(
        &server,
        &auth,
        json!({"process": false, "tag": "three steps"}),
    )?;
    ensure!(
        job["status"]["code"] == "created" && job["process"] == false,
        "{job}"
    );
    let path = job_path(&job);
    // Step 2: inputs and conversions added one by one.
    server.expect(
        "POST",
        &format!("{path}/inputs"),
        &auth,
        Some(json!({"type": "file", "file_id": stored["id"]})),
        200,
    )?;
    let job = server.expect(
        "POST",
        &format!("{path}/inputs"),
        &auth,
        Some(json!({"type": "upload", "filename": "photo.png"})),
        200,
    )?;
    let upload_url = job["inputs"][1]["upload_url"]
        .as_str()
        .context("upload_url")?
        .to_owned();
    for target in ["png", "bmp"] {
        server.expect(
            "POST",
            &format!("{path}/conversions"),
            &auth,
            Some(json!({"target": target})),
            200,
        )?;
    }
    // Nothing runs before step 3.
    let open = server.expect("GET", &path, &auth, None, 200)?;
    ensure!(
        open["status"]["code"] == "created" && open["tasks"] == json!([]),
        "{open}"
    );
    // A conversion that does not fit its schema is refused when added.
    let response = server.call(
        "POST",
        &format!("{path}/conversions"),
        &auth,
        Some(json!({"target": "png", "colour": "blue"})),
    )?;
    assert_problem(response, 422, "validation_failed")?;

    // Step 3: queued. The uploaded input is not there yet, so the job waits for it.
    let job = server.expect("PATCH", &path, &auth, Some(json!({"process": true})), 200)?;
    ensure!(job["tasks"].as_array().map(Vec::len) == Some(4), "{job}");
    let response = server.call("GET", &path, &auth, None)?;
    ensure!(
        response.status() == 202,
        "GET while waiting: {}",
        response.status()
    );
    let response = server.call(
        "POST",
        &format!("{path}/inputs"),
        &auth,
        Some(json!({"type": "upload"})),
    )?;
    assert_problem(response, 409, "conflict")?;

    let bytes = std::fs::read(corpus("image/png-exif.png"))?;
    let response = server
        .client()
        .put(&upload_url)
        .bearer_auth(match &auth {
            Auth::Bearer(token) => token.as_str(),
            _ => "",
        })
        .body(bytes)
        .send()?;
    ensure!(response.status() == 200, "upload: {}", response.status());

    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "completed", "{done}");
    let outputs = done["outputs"].as_array().context("outputs")?;
    ensure!(outputs.len() == 4, "{done}");
    let dir = tempfile::tempdir()?;
    let mut seen = Vec::new();
    for output in outputs {
        let path = download(&server, output, dir.path())?;
        let (kind, ..) = super::plugins::identify(&path)?;
        let target = output["target"].as_str().unwrap_or_default();
        ensure!(kind.starts_with(magick_name(target)), "{output}: {kind}");
        seen.push(format!("{}→{target}", output["input_index"]));
    }
    seen.sort();
    ensure!(seen == ["0→bmp", "0→png", "1→bmp", "1→png"], "{seen:?}");
    Ok(())
}

fn failures_fail_fast_or_leave_the_rest_done(setup: Setup) -> Result<()> {
    let server = Server::builder(setup).plugins(IMAGE_PLUGINS).start()?;
    let auth = anonymous(&server)?;
    let good = upload(
        &server,
        &auth,
        "good.png",
        &std::fs::read(corpus("image/png-exif.png"))?,
    )?;
    let broken = upload(
        &server,
        &auth,
        "broken.png",
        &std::fs::read(corpus("malformed/png-truncated.png"))?,
    )?;
    let inputs = json!([
        {"type": "file", "file_id": good["id"]},
        {"type": "file", "file_id": broken["id"]},
    ]);

    // Keep what succeeded.
    let job = create_job(
        &server,
        &auth,
        json!({"inputs": inputs, "conversions": [{"target": "jpg"}], "fail_on_conversion_error": false}),
    )?;
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "completed", "{done}");
    ensure!(
        done["status"]["info"]
            .as_str()
            .is_some_and(|info| info.contains("1 of 2")),
        "{done}"
    );
    ensure!(
        done["outputs"].as_array().map(Vec::len) == Some(1),
        "{done}"
    );
    ensure!(done["outputs"][0]["input_index"] == 0, "{done}");
    let errors = done["errors"].as_array().context("errors")?;
    ensure!(errors.len() == 1, "{done}");
    ensure!(
        errors[0]["input_index"] == 1 && errors[0]["target"] == "jpg",
        "{done}"
    );
    ensure!(errors[0]["code"] == "malformed_input", "{done}");

    // Fail fast: the job fails with the first error.
    let job = create_job(
        &server,
        &auth,
        json!({"inputs": inputs, "conversions": [{"target": "jpg"}, {"target": "webp"}]}),
    )?;
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "failed", "{done}");
    ensure!(
        done["status"]["info"]
            .as_str()
            .is_some_and(|info| info.contains("input 1")),
        "{done}"
    );
    ensure!(done["errors"][0]["code"] == "malformed_input", "{done}");
    for task in done["tasks"].as_array().context("tasks")? {
        ensure!(
            ["completed", "failed", "canceled"]
                .contains(&task["status"].as_str().unwrap_or_default()),
            "{task}"
        );
    }
    // Retrying a job whose input is broken fails it again, the same way.
    server.expect(
        "POST",
        &format!("{}/retry", job_path(&job)),
        &auth,
        Some(json!({})),
        200,
    )?;
    let again = wait_done(&server, &auth, &job)?;
    ensure!(again["status"]["code"] == "failed", "{again}");
    ensure!(again["errors"][0]["code"] == "malformed_input", "{again}");
    Ok(())
}

/// One recorded request to a [`Loopback`] server.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map_or("", |(_, value)| value.as_str())
    }
}

/// An HTTP server on loopback answering from a script of statuses and bodies, recording
/// what it receives: a callback receiver, or the origin of remote inputs. A 3xx answer's
/// body is its `Location`; status 0 never answers (the connection stays open 10 s).
struct Loopback {
    address: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Loopback {
    /// Answers each request with the next of `script`, then with `last` for ever.
    fn start(script: Vec<(u16, Vec<u8>)>, last: (u16, Vec<u8>)) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?.to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Ok(request) = read_request(&mut stream) else {
                    continue;
                };
                let (status, body) = script
                    .lock()
                    .ok()
                    .and_then(|mut script| script.pop_front())
                    .unwrap_or_else(|| last.clone());
                if let Ok(mut recorded) = recorded.lock() {
                    recorded.push(request);
                }
                if status == 0 {
                    std::thread::sleep(Duration::from_secs(10));
                    continue;
                }
                let (location, body) = if (300..400).contains(&status) {
                    (
                        format!("location: {}\r\n", String::from_utf8_lossy(&body)),
                        Vec::new(),
                    )
                } else {
                    (String::new(), body)
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Scripted\r\n{location}content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            }
        });
        Ok(Self { address, requests })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .map(|list| list.clone())
            .unwrap_or_default()
    }

    /// Waits until `count` requests arrived.
    fn wait_for(&self, count: usize) -> Result<Vec<Request>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return Ok(requests);
            }
            ensure!(
                Instant::now() < deadline,
                "{} requests arrived, not {count}: {requests:#?}",
                requests.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Result<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Request {
        path,
        headers,
        body,
    })
}

fn a_remote_input_is_fetched_and_a_failed_job_retried(setup: Setup) -> Result<()> {
    let server = Server::builder(setup)
        .plugins(IMAGE_PLUGINS)
        .env("METAMORPH_ALLOW_PRIVATE_NETWORKS", "true")
        .start()?;
    let auth = anonymous(&server)?;
    let image = std::fs::read(corpus("image/png-exif.png"))?;
    // The origin fails once, then serves the file.
    let origin = Loopback::start(vec![(503, b"busy".to_vec())], (200, image.clone()))?;
    let job = create_job(
        &server,
        &auth,
        json!({
            "inputs": [{"type": "remote", "source": origin.url("/pictures/holiday.png")}],
            "conversions": [{"target": "jpg"}],
        }),
    )?;
    ensure!(job["inputs"][0]["filename"] == "holiday.png", "{job}");
    let failed = wait_done(&server, &auth, &job)?;
    ensure!(failed["status"]["code"] == "failed", "{failed}");
    let errors = failed["errors"].as_array().context("errors")?;
    ensure!(
        errors
            .iter()
            .any(|error| error["code"] == "remote_fetch_failed"
                && error["message"]
                    .as_str()
                    .is_some_and(|message| message.contains("503"))),
        "{failed}"
    );

    // A completed job cannot be retried; a failed one can, and now succeeds.
    let retried = server.expect(
        "POST",
        &format!("{}/retry", job_path(&job)),
        &auth,
        Some(json!({})),
        200,
    )?;
    ensure!(is_running(&retried), "{retried}");
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "completed", "{done}");
    ensure!(done["errors"] == json!([]), "{done}");
    let dir = tempfile::tempdir()?;
    let path = download(&server, &done["outputs"][0], dir.path())?;
    ensure!(super::plugins::identify(&path)?.0 == "JPEG", "not a JPEG");
    ensure!(
        origin
            .requests()
            .iter()
            .all(|request| request.path == "/pictures/holiday.png")
    );
    let response = server.call(
        "POST",
        &format!("{}/retry", job_path(&job)),
        &auth,
        Some(json!({})),
    )?;
    assert_problem(response, 409, "conflict")?;

    // A remote file past the job's input limit is refused, and not kept.
    let job = create_job(
        &server,
        &auth,
        json!({
            "inputs": [{"type": "remote", "source": origin.url("/big.png")}],
            "conversions": [{"target": "jpg"}],
            "limits": {"input": {"max_file_size": 1000}},
        }),
    )?;
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "failed", "{done}");
    ensure!(done["errors"][0]["code"] == "payload_too_large", "{done}");

    // Redirects are followed up to `jobs.remote_max_redirects` (5), no further.
    let looping = Loopback::start(vec![], (302, b"/again".to_vec()))?;
    let job = create_job(
        &server,
        &auth,
        json!({
            "inputs": [{"type": "remote", "source": looping.url("/start.png")}],
            "conversions": [{"target": "jpg"}],
        }),
    )?;
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["errors"][0]["code"] == "remote_fetch_failed", "{done}");
    ensure!(
        done["errors"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("more than 5 redirects")),
        "{done}"
    );
    ensure!(looping.requests().len() == 6, "{:?}", looping.requests());
    Ok(())
}

fn a_remote_input_that_never_arrives_times_out(setup: Setup) -> Result<()> {
    let server = Server::builder(setup)
        .plugins(IMAGE_PLUGINS)
        .env("METAMORPH_ALLOW_PRIVATE_NETWORKS", "true")
        .env("METAMORPH_JOBS__REMOTE_TIMEOUT", "1s")
        .start()?;
    let auth = anonymous(&server)?;
    let silent = Loopback::start(vec![], (0, Vec::new()))?;
    let job = create_job(
        &server,
        &auth,
        json!({
            "inputs": [{"type": "remote", "source": silent.url("/slow.png")}],
            "conversions": [{"target": "jpg"}],
        }),
    )?;
    let started = Instant::now();
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["errors"][0]["code"] == "remote_fetch_failed", "{done}");
    ensure!(
        done["errors"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("timed out")),
        "{done}"
    );
    ensure!(
        started.elapsed() < Duration::from_secs(8),
        "the time cap held"
    );
    ensure!(done["tasks"].as_array().map(Vec::len) == Some(2), "{done}");
    ensure!(
        done["tasks"][1]["status"] == "failed",
        "its conversion failed with it: {done}"
    );
    Ok(())
}

fn is_running(job: &Value) -> bool {
    ["queued", "processing", "completed"]
        .contains(&job["status"]["code"].as_str().unwrap_or_default())
}

fn jobs_are_canceled_and_then_deleted(setup: Setup) -> Result<()> {
    let server = Server::builder(setup).plugins(IMAGE_PLUGINS).start()?;
    let auth = anonymous(&server)?;
    // Waiting for an upload that never comes: queued until canceled.
    let job = create_job(
        &server,
        &auth,
        json!({"inputs": [{"type": "upload"}], "conversions": [{"target": "png"}]}),
    )?;
    ensure!(job["status"]["code"] == "queued", "{job}");
    let path = job_path(&job);
    let canceled = server.expect("DELETE", &path, &auth, None, 200)?;
    ensure!(canceled["status"]["code"] == "canceled", "{canceled}");
    ensure!(canceled["tasks"][0]["status"] == "canceled", "{canceled}");
    let read = server.expect("GET", &path, &auth, None, 200)?;
    ensure!(read["status"]["code"] == "canceled", "{read}");
    // Canceled is over: it can be retried or deleted.
    server.expect("DELETE", &path, &auth, None, 204)?;
    assert_problem(server.call("GET", &path, &auth, None)?, 404, "not_found")?;
    // Another organisation's job is 404, never 403.
    let other = anonymous(&server)?;
    let job = create_job(&server, &auth, json!({"process": false}))?;
    assert_problem(
        server.call("GET", &job_path(&job), &other, None)?,
        404,
        "not_found",
    )?;
    assert_problem(
        server.call("DELETE", &job_path(&job), &other, None)?,
        404,
        "not_found",
    )?;
    Ok(())
}

fn an_idempotency_key_makes_creation_safe_to_repeat(setup: Setup) -> Result<()> {
    let server = Server::builder(setup).plugins(IMAGE_PLUGINS).start()?;
    let auth = anonymous(&server)?;
    let Auth::Bearer(token) = &auth else {
        bail!("no token")
    };
    let stored = upload(
        &server,
        &auth,
        "a.png",
        &std::fs::read(corpus("image/png-exif.png"))?,
    )?;
    let body = json!({"inputs": [{"type": "file", "file_id": stored["id"]}], "conversions": [{"target": "jpg"}]});
    let create = |body: &Value, key: &str| -> Result<reqwest::blocking::Response> {
        Ok(server
            .client()
            .post(server.url("/api/conversion-jobs"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()?)
    };
    let first: Value = create(&body, "order-1")?.json()?;
    let second = create(&body, "order-1")?;
    ensure!(second.status() == 201, "{}", second.status());
    let second: Value = second.json()?;
    ensure!(first["id"] == second["id"], "{first} {second}");
    let different = json!({"inputs": body["inputs"], "conversions": [{"target": "webp"}]});
    assert_problem(create(&different, "order-1")?, 409, "conflict")?;
    let third: Value = create(&body, "order-2")?.json()?;
    ensure!(third["id"] != first["id"], "a new key makes a new job");
    let jobs = server.expect("GET", "/api/conversion-jobs", &auth, None, 200)?;
    ensure!(jobs["items"].as_array().map(Vec::len) == Some(2), "{jobs}");

    // The one-shot form: the same file and fields under one key are one job.
    let path = corpus("image/bmp-rgb24.bmp");
    let key = [("Idempotency-Key", "form-1")];
    let one: Value =
        convert_form(&server, &auth, &path, &[("target_format", "png")], "", &key)?.json()?;
    let two: Value =
        convert_form(&server, &auth, &path, &[("target_format", "png")], "", &key)?.json()?;
    ensure!(one["id"] == two["id"], "{one} {two}");
    let response = convert_form(&server, &auth, &path, &[("target_format", "gif")], "", &key)?;
    assert_problem(response, 409, "conflict")?;
    let files = server.expect("GET", "/api/files", &auth, None, 200)?;
    let uploads = files["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|file| file["origin"] == "upload")
        .count();
    ensure!(
        uploads == 2,
        "the repeated form kept no second copy: {files}"
    );
    Ok(())
}

/// Checks a Standard Webhooks signature against any of `secrets`.
fn verify_signature(request: &Request, secrets: &[String]) -> Result<()> {
    let id = request.header("webhook-id");
    let timestamp = request.header("webhook-timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let sent: u64 = timestamp.parse()?;
    ensure!(now.abs_diff(sent) < 300, "timestamp {sent} is not now");
    let content = format!(
        "{id}.{timestamp}.{}",
        String::from_utf8_lossy(&request.body)
    );
    let signatures: Vec<&str> = request.header("webhook-signature").split(' ').collect();
    for secret in secrets {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.strip_prefix("whsec_").context("whsec_ prefix")?)?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key)?;
        mac.update(content.as_bytes());
        let expected = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        ensure!(
            signatures.contains(&expected.as_str()),
            "no valid signature for a secret: {signatures:?}"
        );
    }
    Ok(())
}

fn callbacks_are_signed_retried_stopped_by_410_and_replayed(setup: Setup) -> Result<()> {
    let server = Server::builder(setup)
        .plugins(IMAGE_PLUGINS)
        .env("METAMORPH_ALLOW_PRIVATE_NETWORKS", "true")
        .env("METAMORPH_JOBS__CALLBACK_RETRY_BASE", "100ms")
        .start()?;
    let auth = anonymous(&server)?;
    let secrets = server.expect("GET", "/api/callback-secrets", &auth, None, 200)?;
    let first_secret = secrets[0]["secret"].as_str().context("secret")?.to_owned();
    // Rotation: two secrets sign at once.
    let rotated = server.expect("POST", "/api/callback-secrets/rotate", &auth, None, 200)?;
    let keys: Vec<String> = rotated
        .as_array()
        .context("secrets")?
        .iter()
        .filter_map(|secret| secret["secret"].as_str().map(str::to_owned))
        .collect();
    ensure!(keys.len() == 2 && keys[1] == first_secret, "{rotated}");

    // The receiver fails twice, then accepts.
    let receiver = Loopback::start(vec![(500, vec![]), (500, vec![])], (200, vec![]))?;
    let stored = upload(
        &server,
        &auth,
        "a.png",
        &std::fs::read(corpus("image/png-exif.png"))?,
    )?;
    let job = create_job(
        &server,
        &auth,
        json!({
            "inputs": [{"type": "file", "file_id": stored["id"]}],
            "conversions": [{"target": "jpg"}],
            "callback_url": receiver.url("/hooks/metamorph"),
            "notify_status": true,
        }),
    )?;
    wait_done(&server, &auth, &job)?;
    // queued (3 attempts), processing, completed.
    let requests = receiver.wait_for(5)?;
    std::thread::sleep(Duration::from_millis(300));
    let requests_after = receiver.requests();
    ensure!(
        requests_after.len() == 5,
        "no more than five: {requests_after:#?}"
    );
    let mut events = Vec::new();
    for request in &requests {
        verify_signature(request, &keys)?;
        ensure!(request.path == "/hooks/metamorph");
        ensure!(request.header("content-type") == "application/json");
        let body: Value = serde_json::from_slice(&request.body)?;
        ensure!(body["data"]["id"] == job["id"], "{body}");
        events.push(body["type"].as_str().unwrap_or_default().to_owned());
    }
    ensure!(
        events
            == [
                "job.queued",
                "job.queued",
                "job.queued",
                "job.processing",
                "job.completed"
            ],
        "{events:?}"
    );
    // A retried message keeps its id.
    ensure!(requests[0].header("webhook-id") == requests[2].header("webhook-id"));
    let last: Value = serde_json::from_slice(&requests[4].body)?;
    ensure!(last["data"]["status"]["code"] == "completed", "{last}");
    ensure!(
        last["data"]["outputs"][0]["download_url"].is_string(),
        "{last}"
    );
    let recorded = server.expect("GET", &job_path(&job), &auth, None, 200)?;
    let callbacks = recorded["callbacks"].as_array().context("callbacks")?;
    ensure!(callbacks.len() == 3, "{recorded}");
    ensure!(callbacks[0]["state"] == "delivered", "{recorded}");
    let attempts: Vec<&Value> = callbacks[0]["attempts"]
        .as_array()
        .context("attempts")?
        .iter()
        .collect();
    ensure!(
        attempts
            .iter()
            .map(|attempt| attempt["status"].as_u64().unwrap_or(0))
            .collect::<Vec<_>>()
            == [500, 500, 200],
        "{recorded}"
    );

    // Replay sends the last message again.
    server.expect(
        "POST",
        &format!("{}/callbacks/replay", job_path(&job)),
        &auth,
        Some(json!({})),
        200,
    )?;
    let requests = receiver.wait_for(6)?;
    let replayed: Value = serde_json::from_slice(&requests[5].body)?;
    ensure!(replayed["type"] == "job.completed" && replayed["data"]["id"] == job["id"]);
    verify_signature(&requests[5], &keys)?;

    // 410 Gone: never again.
    let gone = Loopback::start(vec![], (410, vec![]))?;
    let job = create_job(
        &server,
        &auth,
        json!({
            "inputs": [{"type": "file", "file_id": stored["id"]}],
            "conversions": [{"target": "png"}],
            "callback_url": gone.url("/gone"),
        }),
    )?;
    wait_done(&server, &auth, &job)?;
    gone.wait_for(1)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let read = server.expect("GET", &job_path(&job), &auth, None, 200)?;
        if read["callbacks"][0]["state"] == "gone" {
            ensure!(
                read["callbacks"][0]["attempts"].as_array().map(Vec::len) == Some(1),
                "{read}"
            );
            break;
        }
        ensure!(Instant::now() < deadline, "{read}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    ensure!(gone.requests().len() == 1, "no retry after 410");
    Ok(())
}

/// A sample of a metric from `/metrics` (0 when absent).
fn metric(server: &Server, name: &str, labels: &str) -> Result<f64> {
    let text = server.get("/metrics")?.text()?;
    Ok(text
        .lines()
        .filter(|line| {
            line.starts_with(name) && labels.split(',').all(|label| line.contains(label))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

fn the_same_conversion_runs_once_and_a_full_queue_answers_429(setup: Setup) -> Result<()> {
    let server = Server::builder(setup).plugins(IMAGE_PLUGINS).start()?;
    let auth = anonymous(&server)?;
    let bytes = std::fs::read(corpus("image/png-exif.png"))?;
    let mut shas = Vec::new();
    for name in ["first.png", "second.png"] {
        // Two uploads of the same bytes, converted the same way (options in another order).
        let stored = upload(&server, &auth, name, &bytes)?;
        let options = if name == "first.png" {
            json!({"quality": 70, "width": 32})
        } else {
            json!({"width": 32, "quality": 70})
        };
        let job = create_job(
            &server,
            &auth,
            json!({"inputs": [{"type": "file", "file_id": stored["id"]}], "conversions": [{"target": "jpg", "options": options}]}),
        )?;
        let done = wait_done(&server, &auth, &job)?;
        ensure!(done["status"]["code"] == "completed", "{done}");
        ensure!(
            done["outputs"][0]["cached"] == (name == "second.png"),
            "{done}"
        );
        shas.push(done["outputs"][0]["sha256"].clone());
        ensure!(
            done["outputs"][0]["filename"] == name.replace(".png", ".jpg"),
            "{done}"
        );
    }
    ensure!(shas[0] == shas[1], "{shas:?}");
    let pair = "pair=\"image:png>jpg\"";
    ensure!(
        metric(
            &server,
            "metamorph_job_tasks_total",
            &format!("{pair},outcome=\"completed\"")
        )? == 1.0
    );
    ensure!(
        metric(
            &server,
            "metamorph_job_tasks_total",
            &format!("{pair},outcome=\"cached\"")
        )? == 1.0
    );

    // A server with no workers and room for two: the third job is refused.
    let idle = Server::builder(setup)
        .plugins(IMAGE_PLUGINS)
        .env("METAMORPH_WORKERS", "0")
        .env("METAMORPH_JOBS__MAX_QUEUED_PER_PAIR", "2")
        .start()?;
    let auth = anonymous(&idle)?;
    let stored = upload(&idle, &auth, "a.png", &bytes)?;
    let body = json!({"inputs": [{"type": "file", "file_id": stored["id"]}], "conversions": [{"target": "gif"}]});
    for _ in 0..2 {
        idle.expect(
            "POST",
            "/api/conversion-jobs",
            &auth,
            Some(body.clone()),
            201,
        )?;
    }
    let response = idle.call("POST", "/api/conversion-jobs", &auth, Some(body.clone()))?;
    let retry_after: u64 = header(&response, "retry-after")
        .parse()
        .context("Retry-After")?;
    ensure!((1..=600).contains(&retry_after), "{retry_after}");
    assert_problem(response, 429, "queue_full")?;
    // Nothing of the refused job was kept; another pair still has room.
    let jobs = idle.expect("GET", "/api/conversion-jobs", &auth, None, 200)?;
    ensure!(jobs["items"].as_array().map(Vec::len) == Some(2), "{jobs}");
    let other = json!({"inputs": body["inputs"], "conversions": [{"target": "bmp"}]});
    idle.expect("POST", "/api/conversion-jobs", &auth, Some(other), 201)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(
        &idle,
        "metamorph_job_tasks_queued",
        "pair=\"image:png>gif\"",
    )? != 2.0
    {
        ensure!(Instant::now() < deadline, "queue depth not in /metrics");
        std::thread::sleep(Duration::from_millis(100));
    }
    ensure!(
        metric(
            &idle,
            "metamorph_job_queue_refusals_total",
            "pair=\"image:png>gif\""
        )? == 1.0
    );
    Ok(())
}

fn private_addresses_are_refused(setup: Setup) -> Result<()> {
    let server = Server::builder(setup).plugins(IMAGE_PLUGINS).start()?;
    let auth = anonymous(&server)?;
    let origin = Loopback::start(vec![], (200, std::fs::read(corpus("image/png-exif.png"))?))?;
    for source in [
        origin.url("/a.png"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::1]/a.png".to_owned(),
    ] {
        let response = server.call(
            "POST",
            "/api/conversion-jobs",
            &auth,
            Some(json!({"inputs": [{"type": "remote", "source": source}], "conversions": [{"target": "jpg"}]})),
        )?;
        let problem = assert_problem(response, 422, "address_not_allowed")?;
        ensure!(
            problem["errors"][0]["path"] == "/inputs/0/source",
            "{problem}"
        );
    }
    let response = server.call(
        "POST",
        "/api/conversion-jobs",
        &auth,
        Some(json!({"process": false, "callback_url": "http://127.0.0.1:9/hook"})),
    )?;
    assert_problem(response, 422, "address_not_allowed")?;
    // A name that resolves to loopback is refused when fetched.
    let port = origin.address.rsplit(':').next().unwrap_or_default();
    let job = create_job(
        &server,
        &auth,
        json!({"inputs": [{"type": "remote", "source": format!("http://localhost:{port}/a.png")}], "conversions": [{"target": "jpg"}]}),
    )?;
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "failed", "{done}");
    ensure!(done["errors"][0]["code"] == "address_not_allowed", "{done}");
    ensure!(origin.requests().is_empty(), "the origin was never reached");
    Ok(())
}

/// Settings that let several servers (or one, restarted) share bytes and tokens.
fn shared(
    builder: metamorph_tests::ServerBuilder,
    storage: &std::path::Path,
) -> metamorph_tests::ServerBuilder {
    builder
        .plugins(&[
            "metamorph_plugin_data.wasm",
            "metamorph_fixture_hostile.wasm",
        ])
        .env("METAMORPH_STORAGE_ROOT", &storage.display().to_string())
        .env(
            "METAMORPH_JWT_SECRET",
            "a-test-signing-key-of-forty-characters!!",
        )
        .env(
            "METAMORPH_SECRETS_KEY",
            "a-test-sealing-key-of-forty-characters!!",
        )
        .env("METAMORPH_JOBS__LEASE", "2s")
        .env("METAMORPH_JOBS__POLL_INTERVAL", "100ms")
}

fn a_job_survives_a_killed_server(setup: Setup) -> Result<()> {
    let shared_dir = tempfile::tempdir()?;
    let first = shared(Server::builder(setup), shared_dir.path()).start()?;
    let auth = anonymous(&first)?;
    let stored = upload(&first, &auth, "note.txt", b"hello, slowly\n")?;
    let job = create_job(
        &first,
        &auth,
        json!({"inputs": [{"type": "file", "file_id": stored["id"]}], "conversions": [{"target": "txt", "options": {"behaviour": "slow"}}]}),
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while first.expect("GET", &job_path(&job), &auth, None, 202)?["status"]["code"] != "processing"
    {
        ensure!(Instant::now() < deadline, "the job never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.signal("KILL")?;
    let database = first.database_url().to_owned();
    let second = shared(Server::builder(setup), shared_dir.path())
        .database_url(&database)
        .share_storage(&first)
        .start()?;
    let done = wait_done(&second, &auth, &job)?;
    ensure!(done["status"]["code"] == "completed", "{done}");
    ensure!(
        done["tasks"][0]["attempts"] == 2,
        "taken over after the kill: {done}"
    );
    let dir = tempfile::tempdir()?;
    let path = download(&second, &done["outputs"][0], dir.path())?;
    ensure!(std::fs::read(path)? == b"hello, slowly\n");
    Ok(())
}

fn limits_bound_time_inputs_and_downloads(setup: Setup) -> Result<()> {
    let shared_dir = tempfile::tempdir()?;
    let server = shared(Server::builder(setup), shared_dir.path()).start()?;
    let auth = anonymous(&server)?;
    let stored = upload(&server, &auth, "note.txt", b"hello\n")?;
    let input = json!({"type": "file", "file_id": stored["id"]});

    // A slow conversion past the job's time limit fails the job.
    let job = create_job(
        &server,
        &auth,
        json!({
            "inputs": [input],
            "conversions": [{"target": "txt", "options": {"behaviour": "slow"}}],
            "limits": {"job": {"max_process_time": 1}},
        }),
    )?;
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "failed", "{done}");
    ensure!(done["errors"][0]["code"] == "job_timed_out", "{done}");
    ensure!(
        done["status"]["info"]
            .as_str()
            .is_some_and(|info| info.contains("max_process_time of 1 s")),
        "{done}"
    );

    // Too many inputs, too large an input: refused before anything is queued.
    let response = server.call(
        "POST",
        "/api/conversion-jobs",
        &auth,
        Some(json!({"inputs": [input, input], "conversions": [{"target": "txt"}], "limits": {"job": {"max_inputs": 1}}})),
    )?;
    assert_problem(response, 422, "validation_failed")?;
    let response = server.call(
        "POST",
        "/api/conversion-jobs",
        &auth,
        Some(json!({"inputs": [input], "conversions": [{"target": "txt"}], "limits": {"input": {"max_file_size": 3}}})),
    )?;
    assert_problem(response, 413, "payload_too_large")?;

    // Each output may be downloaded as often as the job allows.
    let job = create_job(
        &server,
        &auth,
        json!({"inputs": [input], "conversions": [{"target": "txt"}], "limits": {"output": {"max_downloads": 1}}}),
    )?;
    let done = wait_done(&server, &auth, &job)?;
    let url = done["outputs"][0]["download_url"]
        .as_str()
        .context("download_url")?;
    ensure!(server.client().get(url).send()?.status() == 200);
    assert_problem(
        server.client().get(url).send()?,
        410,
        "download_limit_reached",
    )?;
    Ok(())
}

fn usage_counts_what_storage_holds(setup: Setup) -> Result<()> {
    let server = Server::builder(setup).plugins(IMAGE_PLUGINS).start()?;
    let auth = anonymous(&server)?;
    let empty = server.expect("GET", "/api/usage", &auth, None, 200)?;
    ensure!(
        empty == json!({"bytes_used": 0, "quota_bytes": 1u64 << 30, "file_count": 0}),
        "{empty}"
    );
    let photo = upload(
        &server,
        &auth,
        "a.png",
        &std::fs::read(corpus("image/png-exif.png"))?,
    )?;
    upload(
        &server,
        &auth,
        "b.bmp",
        &std::fs::read(corpus("image/bmp-rgb24.bmp"))?,
    )?;
    let job = create_job(
        &server,
        &auth,
        json!({"inputs": [{"type": "file", "file_id": photo["id"]}], "conversions": [{"target": "jpg"}, {"target": "webp"}]}),
    )?;
    wait_done(&server, &auth, &job)?;
    server.expect(
        "DELETE",
        &format!(
            "/api/files/{}/{}",
            photo["org_id"].as_str().unwrap_or_default(),
            photo["id"].as_str().unwrap_or_default()
        ),
        &auth,
        None,
        204,
    )?;

    let usage = server.expect("GET", "/api/usage", &auth, None, 200)?;
    let org_id = photo["org_id"].as_str().context("org_id")?;
    let objects = server.stored_objects(org_id)?;
    let on_disk: u64 = objects.iter().map(|(_, size)| size).sum();
    ensure!(
        usage["file_count"] == 3 && objects.len() == 3,
        "{usage} {objects:?}"
    );
    ensure!(
        usage["bytes_used"] == on_disk,
        "{usage}: storage holds {on_disk} bytes"
    );
    let me = server.expect("GET", "/api/auth/me", &auth, None, 200)?;
    ensure!(me["usage"] == usage, "{me}");
    Ok(())
}

fn two_servers_share_one_queue(backend: Backend) -> Result<()> {
    let shared_dir = tempfile::tempdir()?;
    let a = shared(Server::builder(backend), shared_dir.path())
        .env("METAMORPH_WORKERS", "2")
        .env("METAMORPH_JOBS__CACHE", "false")
        .start()?;
    let database = a.database_url().to_owned();
    let mut b = shared(Server::builder(backend), shared_dir.path())
        .database_url(&database)
        .env("METAMORPH_WORKERS", "2")
        .env("METAMORPH_JOBS__CACHE", "false")
        .start()?;
    let auth = anonymous(&a)?;
    let stored = upload(&a, &auth, "table.csv", b"name,size\nalpha,1\nbeta,2\n")?;
    let create = |count: usize| -> Result<Vec<Value>> {
        (0..count)
            .map(|_| {
                a.expect(
                    "POST",
                    "/api/conversion-jobs",
                    &auth,
                    Some(json!({"inputs": [{"type": "file", "file_id": stored["id"]}], "conversions": [{"target": "json"}]})),
                    201,
                )
            })
            .collect()
    };
    let completed =
        |server: &Server| metric(server, "metamorph_job_tasks_total", "outcome=\"completed\"");

    // 100 jobs shared by both servers: every task runs exactly once.
    let jobs = create(100)?;
    for job in &jobs {
        ensure!(wait_done(&a, &auth, job)?["status"]["code"] == "completed");
    }
    let (on_a, on_b) = (completed(&a)?, completed(&b)?);
    ensure!(
        on_a + on_b == 100.0,
        "{on_a} + {on_b} conversions ran for 100 tasks"
    );
    ensure!(
        on_a > 0.0 && on_b > 0.0,
        "both servers worked: {on_a}, {on_b}"
    );

    // 100 more; one server is killed while they run: nothing is lost.
    let more = create(100)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while completed(&b)? < on_b + 5.0 {
        ensure!(Instant::now() < deadline, "server b took no work");
        std::thread::sleep(Duration::from_millis(10));
    }
    b.signal("KILL")?;
    b.wait_exit(Duration::from_secs(5))?;
    let mut outputs = std::collections::BTreeSet::new();
    for job in jobs.iter().chain(&more) {
        let done = wait_done(&a, &auth, job)?;
        ensure!(done["status"]["code"] == "completed", "{done}");
        ensure!(
            done["outputs"].as_array().map(Vec::len) == Some(1),
            "{done}"
        );
        outputs.insert(
            done["outputs"][0]["file_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    ensure!(
        outputs.len() == 200,
        "one output per task: {}",
        outputs.len()
    );
    let mut kept = 0;
    let mut cursor = String::new();
    loop {
        let page = a.expect(
            "GET",
            &format!("/api/files?limit=200&cursor={cursor}"),
            &auth,
            None,
            200,
        )?;
        kept += page["items"]
            .as_array()
            .context("items")?
            .iter()
            .filter(|file| file["origin"] == "output")
            .count();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    ensure!(kept == 200, "no output recorded twice: {kept}");
    Ok(())
}

fn a_job_whose_outputs_cannot_fit_is_refused_before_it_is_queued(setup: Setup) -> Result<()> {
    let bytes = std::fs::read(corpus("image/png-exif.png"))?;
    let size = bytes.len() as u64;
    // Room for the input and one output of its size, not two.
    let quota = size * 5 / 2;
    let server = Server::builder(setup)
        .plugins(&["metamorph_plugin_image.wasm"])
        .env("METAMORPH_ANONYMOUS_QUOTA_BYTES", &quota.to_string())
        .start()?;
    let auth = anonymous(&server)?;
    let stored = upload(&server, &auth, "photo.png", &bytes)?;
    let body = |targets: &[&str]| {
        json!({"inputs": [{"type": "file", "file_id": stored["id"]}],
               "conversions": targets.iter().map(|target| json!({"target": target})).collect::<Vec<_>>()})
    };
    let refused = server.call(
        "POST",
        "/api/conversion-jobs",
        &auth,
        Some(body(&["jpg", "webp"])),
    )?;
    let problem = assert_problem(refused, 413, "quota_exceeded")?;
    let detail = problem["detail"].as_str().unwrap_or_default();
    ensure!(
        detail.contains(&format!("{} bytes free", quota - size)),
        "the problem says how much is free: {problem}"
    );
    // Nothing was queued or kept.
    let jobs = server.expect("GET", "/api/conversion-jobs", &auth, None, 200)?;
    ensure!(
        jobs["items"].as_array().is_some_and(Vec::is_empty),
        "{jobs}"
    );
    // One output fits.
    let job = create_job(&server, &auth, body(&["jpg"]))?;
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "completed", "{done}");
    Ok(())
}
