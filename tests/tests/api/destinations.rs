//! Destinations and cloud inputs against real servers started by `cargo xtask test`:
//! SeaweedFS (S3), Azurite (Azure Blob), fake-gcs-server (GCS), pyftpdlib (FTP) and
//! OpenSSH's sshd (SFTP). Each output is read back with an independent client (curl's
//! SigV4, the Azure SDK for Python, the GCS JSON API, curl's FTP, OpenSSH's `sftp`) and
//! compared by SHA-256; credentials never show in a response or a log line.

use anyhow::{Context, Result, ensure};
use metamorph_tests::objects::SftpTarget;
use metamorph_tests::{
    Auth, AzblobTarget, Backend, FtpTarget, GcsTarget, S3Target, Server, assert_problem, corpus,
    field_paths, on_both_backends,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::jobs::wait_done;
use super::transfers::upload;

on_both_backends!(outputs_reach_every_service_and_read_back_the_same);

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn unique() -> String {
    format!(
        "t{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|time| time.as_nanos())
            .unwrap_or_default()
    )
}

/// The five test servers, and the secrets their destinations hold.
struct Services {
    s3: S3Target,
    azblob: AzblobTarget,
    gcs: GcsTarget,
    ftp: FtpTarget,
    sftp: SftpTarget,
    /// The SFTP client's private key (the text a destination holds).
    sftp_key: String,
}

/// The pieces of a private key to look for: the whole text, and each line of its body
/// (JSON shows the text with its line breaks escaped, so it never shows whole).
fn key_secrets(key: &str) -> Vec<String> {
    let mut secrets = vec![key.to_owned()];
    secrets.extend(
        key.lines()
            .map(str::trim)
            .filter(|line| line.len() >= 16 && !line.starts_with("-----"))
            .map(str::to_owned),
    );
    secrets
}

impl Services {
    fn from_env() -> Result<Self> {
        let sftp = SftpTarget::from_env()?;
        Ok(Self {
            s3: S3Target::from_env()?,
            azblob: AzblobTarget::from_env()?,
            gcs: GcsTarget::from_env()?,
            ftp: FtpTarget::from_env()?,
            sftp_key: sftp.private_key()?,
            sftp,
        })
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![
            self.s3.secret_access_key.clone(),
            self.azblob.account_key.clone(),
            self.ftp.password.clone(),
        ];
        secrets.extend(key_secrets(&self.sftp_key));
        secrets
    }

    /// A body creating an SFTP destination under `root` (a folder of the server's start
    /// folder: opendal takes an SFTP root as an absolute path) with `private_key`.
    fn sftp_destination(&self, root: &str, private_key: &str) -> Value {
        json!({"name": "sftp", "type": "sftp",
               "parameters": {"host": self.sftp.host, "port": self.sftp.port,
                              "root": format!("{}/{root}", self.sftp.root)},
               "credentials": {"username": self.sftp.user, "private_key": private_key}})
    }

    fn ftp_host_port(&self) -> Result<(String, u16)> {
        let rest = self
            .ftp
            .endpoint
            .strip_prefix("ftp://")
            .context("ftp endpoint")?;
        let (host, port) = rest.rsplit_once(':').context("ftp port")?;
        Ok((host.to_owned(), port.trim_end_matches('/').parse()?))
    }

    /// Bodies creating one destination per service, each under `root`.
    fn destinations(&self, root: &str) -> Result<Vec<Value>> {
        let (host, port) = self.ftp_host_port()?;
        Ok(vec![
            json!({"name": "bucket", "type": "aws", "parameters": {"bucket": self.s3.bucket, "endpoint": self.s3.endpoint, "region": "us-east-1", "root": root},
                   "credentials": {"access_key_id": self.s3.access_key_id, "secret_access_key": self.s3.secret_access_key}}),
            json!({"name": "blobs", "type": "azblob", "parameters": {"container": self.azblob.container, "endpoint": self.azblob.endpoint, "root": root},
                   "credentials": {"account_name": self.azblob.account_name, "account_key": self.azblob.account_key}}),
            json!({"name": "gcs", "type": "gcs", "parameters": {"bucket": self.gcs.bucket, "endpoint": self.gcs.endpoint, "root": root}}),
            json!({"name": "ftp", "type": "ftp", "parameters": {"host": host, "port": port, "root": format!("/{root}")},
                   "credentials": {"username": self.ftp.user, "password": self.ftp.password}}),
            self.sftp_destination(root, &self.sftp_key),
        ])
    }

    /// An object's bytes, read by the service's independent client.
    fn read(&self, service: &str, path: &str) -> Result<Vec<u8>> {
        match service {
            "s3" => self.s3.get(path),
            "azblob" => self.azblob.get(path),
            "gcs" => self.gcs.get(path),
            "ftp" => self.ftp.get(path),
            "sftp" => self.sftp.get(path),
            other => anyhow::bail!("no client for {other}"),
        }
    }
}

/// A server with the image plugin (loopback addresses allowed when `allow_private`) and an
/// anonymous session on it, after the server's `HOME`: a folder of its own, to keep (bind
/// it first, so that it goes last) while the server runs. SFTP goes through `ssh` sessions
/// whose control sockets opendal's `openssh` keeps under `$HOME/.local/state`. (`ssh`
/// itself records the host keys it accepts in the `~/.ssh/known_hosts` of the user's
/// password-database home, which `HOME` does not change.)
fn start(backend: Backend, allow_private: bool) -> Result<(tempfile::TempDir, Server, Auth)> {
    let home = tempfile::tempdir()?;
    let server = Server::builder(backend)
        .plugins(&["metamorph_plugin_image.wasm"])
        .env(
            "METAMORPH_ALLOW_PRIVATE_NETWORKS",
            if allow_private { "true" } else { "false" },
        )
        .env("HOME", &home.path().to_string_lossy())
        .start()?;
    let session = server.expect("POST", "/api/anon/session", &Auth::None, None, 201)?;
    let auth = Auth::Bearer(session["token"].as_str().context("token")?.to_owned());
    Ok((home, server, auth))
}

/// The path of a destination record as the API answered it.
fn destination_path(record: &Value) -> String {
    format!(
        "/api/destinations/{}/{}",
        record["org_id"].as_str().unwrap_or_default(),
        record["id"].as_str().unwrap_or_default()
    )
}

fn ensure_secret_free(what: &str, text: &str, secrets: &[String]) -> Result<()> {
    for secret in secrets {
        ensure!(
            !text.contains(secret.as_str()),
            "{what} shows a secret: {text}"
        );
    }
    Ok(())
}

fn outputs_reach_every_service_and_read_back_the_same(backend: Backend) -> Result<()> {
    let services = Services::from_env()?;
    let (_home, server, auth) = start(backend, true)?;
    let root = unique();

    // One destination per service; each passes its test (write, read back, delete).
    let mut ids = Vec::new();
    for body in services.destinations(&root)? {
        let created = server.expect("POST", "/api/destinations", &auth, Some(body), 201)?;
        ensure!(
            created["has_credentials"] == (created["type"] != "gcs"),
            "{created}"
        );
        ensure!(created.get("credentials").is_none(), "{created}");
        ensure_secret_free(
            "a created destination",
            &created.to_string(),
            &services.secrets(),
        )?;
        let path = destination_path(&created);
        let tested = server.expect("POST", &format!("{path}/test"), &auth, Some(json!({})), 200)?;
        ensure!(tested["ok"] == true, "{}: {tested}", created["type"]);
        ids.push((
            created["type"].as_str().unwrap_or_default().to_owned(),
            created["id"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    ensure!(ids[0].0 == "s3", "the alias `aws` is stored as s3: {ids:?}");
    // The probe objects are gone.
    ensure!(services.s3.list(&format!("{root}/"))?.is_empty());
    ensure!(services.sftp.list(&format!("{root}/"))?.is_empty());

    // One job writes its output to each; Azure's without keeping a copy.
    let bytes = std::fs::read(corpus("image/png-exif.png"))?;
    let stored = upload(&server, &auth, "holiday photo.png", &bytes)?;
    let conversions: Vec<Value> = ids
        .iter()
        .map(|(service, id)| {
            json!({"target": "jpg", "destination": id, "keep_copy": service != "azblob",
                   "key_template": format!("{service}/{{job_id}}/{{input_name}}.{{ext}}")})
        })
        .collect();
    let job = server.expect(
        "POST",
        "/api/conversion-jobs",
        &auth,
        Some(json!({"inputs": [{"type": "file", "file_id": stored["id"]}], "conversions": conversions})),
        201,
    )?;
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "completed", "{done}");
    let outputs = done["outputs"].as_array().context("outputs")?;
    ensure!(outputs.len() == 5, "{done}");
    let job_id = job["id"].as_str().unwrap_or_default();
    for output in outputs {
        let destination = &output["destination"];
        let service = destination["type"].as_str().unwrap_or_default();
        let path = destination["path"].as_str().unwrap_or_default();
        ensure!(
            path == format!("{service}/{job_id}/holiday photo.jpg"),
            "{output}"
        );
        let written = services.read(service, &format!("{root}/{path}"))?;
        ensure!(written.starts_with(&[0xff, 0xd8]), "{service}: not a JPEG");
        ensure!(
            output["sha256"] == sha256(&written),
            "{service}: what the service holds is not the output: {output}"
        );
        if service == "azblob" {
            ensure!(output["file_id"].is_null(), "no copy kept: {output}");
            ensure!(output.get("download_url").is_none(), "{output}");
        } else {
            let kept = server
                .client()
                .get(output["download_url"].as_str().context("url")?)
                .send()?;
            ensure!(kept.status() == 200);
            ensure!(
                kept.bytes()?.as_ref() == written.as_slice(),
                "{service}: copy differs"
            );
        }
    }
    // Only the four kept copies count.
    let usage = server.expect("GET", "/api/usage", &auth, None, 200)?;
    let kept: u64 = outputs
        .iter()
        .filter(|output| !output["file_id"].is_null())
        .map(|output| output["size"].as_u64().unwrap_or(0))
        .sum();
    ensure!(
        usage["bytes_used"] == bytes.len() as u64 + kept,
        "{usage} {done}"
    );

    // No secret in any response or log line.
    let listed = server.expect("GET", "/api/destinations", &auth, None, 200)?;
    ensure_secret_free(
        "the destination list",
        &listed.to_string(),
        &services.secrets(),
    )?;
    ensure_secret_free("the job", &done.to_string(), &services.secrets())?;
    let logs: String = server.logs().iter().map(Value::to_string).collect();
    ensure!(
        logs.contains("output written to its destination"),
        "logs: {logs}"
    );
    ensure_secret_free("the log", &logs, &services.secrets())?;
    ensure_audit_secret_free(&server, &services.secrets())
}

/// The audit trail, as a superuser sees it, records the destinations' creation and holds no
/// secret.
fn ensure_audit_secret_free(server: &Server, secrets: &[String]) -> Result<()> {
    let root = Auth::Bearer(server.root_token()?);
    let audit = server.expect("GET", "/api/audit?limit=500", &root, None, 200)?;
    ensure!(
        audit["items"]
            .as_array()
            .context("items")?
            .iter()
            .any(|event| event["resource"] == "destinations" && event["action"] == "create"),
        "{audit}"
    );
    ensure_secret_free("the audit trail", &audit.to_string(), secrets)
}

#[test]
fn inline_targets_cloud_inputs_and_the_form_use_the_same_services() -> Result<()> {
    let services = Services::from_env()?;
    let (_home, server, auth) = start(Backend::Sqlite, true)?;
    let root = unique();
    let bytes = std::fs::read(corpus("image/png-exif.png"))?;
    services.s3.put(&format!("{root}/in/photo.png"), &bytes)?;
    services.ftp.put(&format!("{root}-in.png"), &bytes)?;
    let (host, port) = services.ftp_host_port()?;
    let ftp = server.expect(
        "POST",
        "/api/destinations",
        &auth,
        Some(json!({"name": "ftp", "type": "ftp", "parameters": {"host": host, "port": port},
                    "credentials": {"username": services.ftp.user, "password": services.ftp.password}})),
        201,
    )?;

    // Inputs read from a bucket given inline (online-convert's names) and from a
    // destination; the outputs go to a bucket given inline (the `aws` alias).
    let job = server.expect(
        "POST",
        "/api/conversion-jobs",
        &auth,
        Some(json!({
            "inputs": [
                {"type": "cloud", "source": "amazons3",
                 "parameters": {"bucket": services.s3.bucket, "region": "us-east-1", "endpoint": services.s3.endpoint, "file": format!("{root}/in/photo.png")},
                 "credentials": {"accesskeyid": services.s3.access_key_id, "secretaccesskey": services.s3.secret_access_key}},
                {"type": "destination", "destination_id": ftp["id"], "path": format!("{root}-in.png")},
                // Indox's `s3_key`: the source is S3 unless named.
                {"type": "cloud", "s3_key": format!("{root}/in/photo.png"),
                 "parameters": {"bucket": services.s3.bucket, "endpoint": services.s3.endpoint},
                 "credentials": {"access_key_id": services.s3.access_key_id, "secret_access_key": services.s3.secret_access_key}}
            ],
            "conversions": [{"target": "webp", "key_template": format!("{root}/out/{{input_index}}-{{filename}}"),
                "output_target": {"type": "aws", "parameters": {"bucket": services.s3.bucket, "endpoint": services.s3.endpoint},
                                  "credentials": {"access_key_id": services.s3.access_key_id, "secret_access_key": services.s3.secret_access_key}}}]
        })),
        201,
    )?;
    ensure_secret_free("the created job", &job.to_string(), &services.secrets())?;
    ensure!(job["inputs"][0]["has_credentials"] == true, "{job}");
    ensure!(
        job["conversions"][0]["output_target"]["has_credentials"] == true,
        "{job}"
    );
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "completed", "{done}");
    ensure!(
        job["inputs"][2]["source"] == "s3"
            && job["inputs"][2]["path"] == format!("{root}/in/photo.png"),
        "{job}"
    );
    for (index, name) in [
        (0, "photo.webp"),
        (1, &*format!("{root}-in.webp")),
        (2, "photo.webp"),
    ] {
        let output = done["outputs"]
            .as_array()
            .context("outputs")?
            .iter()
            .find(|output| output["input_index"] == index)
            .context("output")?;
        let path = format!("{root}/out/{index}-{name}");
        ensure!(output["destination"]["path"] == path.as_str(), "{output}");
        ensure!(
            output["destination"]["destination_id"].is_null(),
            "{output}"
        );
        let written = services.s3.get(&path)?;
        ensure!(&written[8..12] == b"WEBP", "{path} is not WebP");
        ensure!(output["sha256"] == sha256(&written), "{output}");
    }
    // The inputs were stored as read.
    let files = server.expect("GET", "/api/files", &auth, None, 200)?;
    let inputs: Vec<&Value> = files["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|file| file["origin"] == "cloud")
        .collect();
    ensure!(inputs.len() == 3, "{files}");
    for input in inputs {
        ensure!(input["sha256"] == sha256(&bytes), "{input}");
    }

    // The one-shot form takes a destination too.
    let file = corpus("image/png-exif.png");
    let form = reqwest::blocking::multipart::Form::new()
        .file("file", &file)?
        .text("target_format", "png")
        .text(
            "destination",
            ftp["id"].as_str().unwrap_or_default().to_owned(),
        )
        .text("key_template", format!("{root}-form/{{filename}}"))
        .text("keep_copy", "false");
    let Auth::Bearer(token) = &auth else {
        unreachable!()
    };
    let answered = server
        .client()
        .post(server.url("/api/convert?wait=30"))
        .bearer_auth(token)
        .multipart(form)
        .send()?;
    ensure!(answered.status() == 201, "{}", answered.status());
    let done: Value = answered.json()?;
    let output = &done["outputs"][0];
    ensure!(output["file_id"].is_null(), "{done}");
    let written = services.ftp.get(&format!("{root}-form/png-exif.png"))?;
    ensure!(output["sha256"] == sha256(&written), "{done}");

    let logs: String = server.logs().iter().map(Value::to_string).collect();
    ensure_secret_free("the log", &logs, &services.secrets())?;
    ensure_audit_secret_free(&server, &services.secrets())
}

#[test]
fn bad_destinations_are_refused_with_what_to_fix() -> Result<()> {
    let services = Services::from_env()?;
    // Private networks are not allowed here: the test servers are on loopback.
    let (_home, server, auth) = start(Backend::Sqlite, false)?;
    let create = |body: Value| server.call("POST", "/api/destinations", &auth, Some(body));

    let refused = create(json!({"name": "b", "type": "box", "parameters": {}}))?;
    let problem = assert_problem(refused, 400, "bad_request")?;
    ensure!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("not supported"),
        "{problem}"
    );
    let refused = create(json!({"name": "n", "type": "nfs"}))?;
    assert_problem(refused, 422, "validation_failed")?;
    let refused = create(
        json!({"name": "s", "type": "s3", "parameters": {"region": "eu-west-1", "colour": "red"},
                                "credentials": {"access_key_id": "AKIAEXAMPLE"}}),
    )?;
    let problem = assert_problem(refused, 422, "validation_failed")?;
    let paths = field_paths(&problem);
    ensure!(
        paths
            == [
                "/parameters/bucket",
                "/parameters/colour",
                "/credentials/secret_access_key"
            ],
        "{problem}"
    );

    // Drive, Dropbox and OneDrive: their configuration is checked and stored sealed.
    for (service, alias) in [
        ("gdrive", "google_drive"),
        ("dropbox", "dropbox"),
        ("onedrive", "onedrive"),
    ] {
        let refused = create(
            json!({"name": service, "type": alias, "credentials": {"refresh_token": "r-token"}}),
        )?;
        let problem = assert_problem(refused, 422, "validation_failed")?;
        ensure!(problem["errors"][0]["path"] == "/credentials", "{problem}");
        ensure!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("client_secret"),
            "{problem}"
        );
        let created = server.expect(
            "POST",
            "/api/destinations",
            &auth,
            Some(json!({"name": service, "type": alias, "parameters": {"root": "exports"},
                        "credentials": {"refresh_token": "r-token-secret", "client_id": "id", "client_secret": "cs-secret"}})),
            201,
        )?;
        ensure!(
            created["type"] == service && created["has_credentials"] == true,
            "{created}"
        );
        ensure!(!created.to_string().contains("secret\""), "{created}");
    }
    let meta = server.expect("GET", "/api/_meta/destinations", &auth, None, 200)?;
    ensure!(meta.to_string().contains("writeOnly"), "{meta}");

    // A destination on a loopback address is refused when tested and when used.
    let local = server.expect(
        "POST",
        "/api/destinations",
        &auth,
        Some(json!({"name": "local", "type": "s3", "parameters": {"bucket": services.s3.bucket, "endpoint": services.s3.endpoint},
                    "credentials": {"access_key_id": services.s3.access_key_id, "secret_access_key": "wrong-secret-value"}})),
        201,
    )?;
    let path = destination_path(&local);
    let refused = server.call("POST", &format!("{path}/test"), &auth, Some(json!({})))?;
    assert_problem(refused, 422, "address_not_allowed")?;

    // An unknown destination, a bad key template and keep_copy without a destination are
    // refused when the job is created.
    let bytes = std::fs::read(corpus("image/png-exif.png"))?;
    let stored = upload(&server, &auth, "photo.png", &bytes)?;
    for (conversion, at) in [
        (
            json!({"target": "jpg", "destination": "0190f000-0000-7000-8000-000000000000"}),
            "/conversions/0/destination",
        ),
        (
            json!({"target": "jpg", "destination": local["id"], "key_template": "{job}/{filename}"}),
            "/conversions/0/key_template",
        ),
        (
            json!({"target": "jpg", "keep_copy": false}),
            "/conversions/0/keep_copy",
        ),
        (
            json!({"target": "jpg", "output_target": {"type": "s3", "parameters": {}}}),
            "/conversions/0/output_target/parameters/bucket",
        ),
    ] {
        let refused = server.call(
            "POST",
            "/api/conversion-jobs",
            &auth,
            Some(json!({"inputs": [{"type": "file", "file_id": stored["id"]}], "conversions": [conversion]})),
        )?;
        let problem = assert_problem(refused, 422, "validation_failed")?;
        ensure!(problem.to_string().contains(at), "{at}: {problem}");
    }
    let refused = server.call(
        "POST",
        "/api/conversion-jobs",
        &auth,
        Some(
            json!({"inputs": [{"type": "file", "file_id": stored["id"]}],
                    "conversions": [{"target": "jpg", "output_target": {"type": "box"}}]}),
        ),
    )?;
    assert_problem(refused, 400, "bad_request")?;

    // A conversion to the loopback destination fails as a typed error on its output.
    let job = server.expect(
        "POST",
        "/api/conversion-jobs",
        &auth,
        Some(
            json!({"inputs": [{"type": "file", "file_id": stored["id"]}],
                    "conversions": [{"target": "jpg", "destination": local["id"]}]}),
        ),
        201,
    )?;
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "failed", "{done}");
    ensure!(done["errors"][0]["code"] == "address_not_allowed", "{done}");
    ensure!(server.get("/api/health")?.status() == 200);
    Ok(())
}

#[test]
fn a_wrong_secret_fails_the_test_and_the_output_without_showing_it() -> Result<()> {
    let services = Services::from_env()?;
    let (_home, server, auth) = start(Backend::Sqlite, true)?;
    let wrong = "wrong-secret-value-0123456789";
    let created = server.expect(
        "POST",
        "/api/destinations",
        &auth,
        Some(json!({"name": "bucket", "type": "s3", "parameters": {"bucket": services.s3.bucket, "endpoint": services.s3.endpoint},
                    "credentials": {"access_key_id": services.s3.access_key_id, "secret_access_key": wrong}})),
        201,
    )?;
    let path = destination_path(&created);
    let refused = server.call("POST", &format!("{path}/test"), &auth, Some(json!({})))?;
    let problem = assert_problem(refused, 502, "destination_failed")?;
    ensure!(!problem.to_string().contains(wrong), "{problem}");

    // Fixed with a PATCH of the credentials, it passes.
    server.expect(
        "PATCH",
        &path,
        &auth,
        Some(json!({"credentials": {"access_key_id": services.s3.access_key_id, "secret_access_key": services.s3.secret_access_key}})),
        200,
    )?;
    server.expect("POST", &format!("{path}/test"), &auth, Some(json!({})), 200)?;
    server.expect(
        "PATCH",
        &path,
        &auth,
        Some(json!({"credentials": {"access_key_id": services.s3.access_key_id, "secret_access_key": wrong}})),
        200,
    )?;

    // A job writing there fails that output with the typed error, and the rest goes on.
    let bytes = std::fs::read(corpus("image/png-exif.png"))?;
    let stored = upload(&server, &auth, "photo.png", &bytes)?;
    let job = server.expect(
        "POST",
        "/api/conversion-jobs",
        &auth,
        Some(json!({"inputs": [{"type": "file", "file_id": stored["id"]}], "fail_on_conversion_error": false,
                    "conversions": [{"target": "jpg", "destination": created["id"]}, {"target": "webp"}]})),
        201,
    )?;
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["errors"][0]["code"] == "destination_failed", "{done}");
    ensure!(
        done["outputs"].as_array().map(Vec::len) == Some(1),
        "{done}"
    );
    ensure!(done["outputs"][0]["target"] == "webp", "{done}");
    // The failed output's stored copy was not kept.
    let usage = server.expect("GET", "/api/usage", &auth, None, 200)?;
    ensure!(
        usage["bytes_used"]
            == bytes.len() as u64 + done["outputs"][0]["size"].as_u64().unwrap_or(0),
        "{usage}"
    );
    let logs: String = server.logs().iter().map(Value::to_string).collect();
    ensure!(
        !logs.contains(wrong) && !done.to_string().contains(wrong),
        "{logs}"
    );
    Ok(())
}

#[test]
fn an_sftp_key_that_is_not_authorised_fails_the_test_without_showing_it() -> Result<()> {
    let services = Services::from_env()?;
    let (_home, server, auth) = start(Backend::Sqlite, true)?;
    // A well-formed key the server does not know.
    let folder = tempfile::tempdir()?;
    let file = folder.path().join("stranger");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "stranger", "-f"])
        .arg(&file)
        .output()?;
    ensure!(made.status.success(), "ssh-keygen: {made:?}");
    let wrong = std::fs::read_to_string(&file)?;
    let mut secrets = key_secrets(&wrong);
    secrets.extend(services.secrets());

    let root = unique();
    let created = server.expect(
        "POST",
        "/api/destinations",
        &auth,
        Some(services.sftp_destination(&root, &wrong)),
        201,
    )?;
    ensure!(created["has_credentials"] == true, "{created}");
    ensure_secret_free("the created destination", &created.to_string(), &secrets)?;
    let path = destination_path(&created);
    let refused = server.call("POST", &format!("{path}/test"), &auth, Some(json!({})))?;
    let problem = assert_problem(refused, 502, "destination_failed")?;
    ensure_secret_free("the problem", &problem.to_string(), &secrets)?;

    // With the authorised key it passes, and writes under its root; the key as pasted
    // from elsewhere, with CRLF line breaks and without the final one (which `ssh` needs).
    let pasted = services.sftp_key.trim_end().replace('\n', "\r\n");
    server.expect(
        "PATCH",
        &path,
        &auth,
        Some(json!({"credentials": {"username": services.sftp.user, "private_key": pasted}})),
        200,
    )?;
    let tested = server.expect("POST", &format!("{path}/test"), &auth, Some(json!({})), 200)?;
    ensure!(tested["ok"] == true, "{tested}");
    ensure_secret_free("the test report", &tested.to_string(), &secrets)?;
    let bytes = std::fs::read(corpus("image/png-exif.png"))?;
    let stored = upload(&server, &auth, "photo.png", &bytes)?;
    let job = server.expect(
        "POST",
        "/api/conversion-jobs",
        &auth,
        Some(json!({"inputs": [{"type": "file", "file_id": stored["id"]}],
                    "conversions": [{"target": "webp", "destination": created["id"], "keep_copy": false,
                                     "key_template": "exports/{job_id}/{input_name}.{ext}"}]})),
        201,
    )?;
    let done = wait_done(&server, &auth, &job)?;
    ensure!(done["status"]["code"] == "completed", "{done}");
    let output = &done["outputs"][0];
    let key = format!(
        "exports/{}/photo.webp",
        job["id"].as_str().unwrap_or_default()
    );
    ensure!(output["destination"]["path"] == key.as_str(), "{output}");
    let written = services.sftp.get(&format!("{root}/{key}"))?;
    ensure!(&written[8..12] == b"WEBP", "not WebP");
    ensure!(output["sha256"] == sha256(&written), "{output}");
    ensure!(
        services.sftp.list(&format!("{root}/"))? == [format!("{root}/{key}")],
        "only the output is left"
    );
    ensure_secret_free("the job", &done.to_string(), &secrets)?;
    let logs: String = server.logs().iter().map(Value::to_string).collect();
    ensure_secret_free("the log", &logs, &secrets)?;
    Ok(())
}
