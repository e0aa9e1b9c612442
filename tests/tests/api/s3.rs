//! The service's own storage on a real S3-compatible server (SeaweedFS, started by `cargo
//! xtask test`), on both database backends: uploads, ranges, conversions and deletes keep
//! the bytes in the bucket under each organisation's prefix, as an independent client
//! (`curl`'s SigV4) sees them.

use anyhow::{Context, Result, ensure};
use metamorph_tests::{Auth, Backend, Server, corpus, on_both_backends};
use serde_json::{Value, json};

use super::transfers::upload;

on_both_backends!(files_and_outputs_live_in_the_bucket);

fn files_and_outputs_live_in_the_bucket(backend: Backend) -> Result<()> {
    let (builder, bucket, prefix) = Server::builder(backend)
        .plugins(&["metamorph_plugin_image.wasm"])
        .s3_storage()?;
    let server = builder.start()?;
    let health = server.expect("GET", "/api/health", &Auth::None, None, 200)?;
    ensure!(health["checks"]["storage"]["backend"] == "s3", "{health}");
    ensure!(health["checks"]["storage"]["status"] == "ok", "{health}");

    let session = server.expect("POST", "/api/anon/session", &Auth::None, None, 201)?;
    let auth = Auth::Bearer(session["token"].as_str().context("token")?.to_owned());
    let bytes = std::fs::read(corpus("image/png-exif.png"))?;
    let stored = upload(&server, &auth, "photo.png", &bytes)?;
    let org_id = stored["org_id"].as_str().context("org_id")?.to_owned();
    let file_id = stored["id"].as_str().context("id")?.to_owned();

    // The object is where the org's prefix says, whole.
    let objects = bucket.list(&prefix)?;
    ensure!(
        objects
            == vec![(
                format!("{prefix}orgs/{org_id}/files/{file_id}"),
                bytes.len() as u64
            )],
        "{objects:?}"
    );

    // Ranges come back from the bucket.
    let url = stored["download_url"].as_str().context("download_url")?;
    let part = server
        .client()
        .get(url)
        .header("Range", "bytes=100-199")
        .send()?;
    ensure!(part.status() == 206, "{}", part.status());
    ensure!(part.bytes()?.as_ref() == &bytes[100..200]);

    // A conversion reads from and writes to the bucket.
    let job = server.expect(
        "POST",
        "/api/conversion-jobs",
        &auth,
        Some(json!({"inputs": [{"type": "file", "file_id": file_id}], "conversions": [{"target": "jpg"}]})),
        201,
    )?;
    let path = format!(
        "/api/conversion-jobs/{org_id}/{}",
        job["id"].as_str().unwrap_or_default()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let done: Value = loop {
        let read = server.call("GET", &path, &auth, None)?;
        let status = read.status().as_u16();
        let body: Value = read.json()?;
        if status == 200 {
            break body;
        }
        ensure!(std::time::Instant::now() < deadline, "{body}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    ensure!(done["status"]["code"] == "completed", "{done}");
    ensure!(
        !done.to_string().contains("orgs/"),
        "no storage key in a response: {done}"
    );
    let output = &done["outputs"][0];
    let jpeg = server
        .client()
        .get(output["download_url"].as_str().context("download_url")?)
        .send()?
        .bytes()?;
    ensure!(jpeg.starts_with(&[0xff, 0xd8, 0xff]), "not a JPEG");
    let objects = bucket.list(&prefix)?;
    let output_key = format!(
        "{prefix}orgs/{org_id}/files/{}",
        output["file_id"].as_str().unwrap_or_default()
    );
    ensure!(
        objects.contains(&(output_key, jpeg.len() as u64)) && objects.len() == 2,
        "{objects:?}"
    );

    // A file of several parts goes up as a multipart upload and comes back whole.
    let big: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let large = upload(&server, &auth, "large.bin", &big)?;
    let back = server
        .client()
        .get(large["download_url"].as_str().context("download_url")?)
        .send()?
        .bytes()?;
    ensure!(
        back.len() == big.len() && back.as_ref() == big.as_slice(),
        "the large file changed"
    );
    server.expect(
        "DELETE",
        &format!(
            "/api/files/{org_id}/{}",
            large["id"].as_str().unwrap_or_default()
        ),
        &auth,
        None,
        204,
    )?;

    // Deleting the record deletes the object.
    server.expect(
        "DELETE",
        &format!("/api/files/{org_id}/{file_id}"),
        &auth,
        None,
        204,
    )?;
    let objects = bucket.list(&prefix)?;
    ensure!(
        objects.len() == 1 && !objects[0].0.ends_with(&file_id),
        "{objects:?}"
    );
    Ok(())
}
