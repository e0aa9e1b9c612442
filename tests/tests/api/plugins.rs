//! The plugin runtime: loading, refusing, limits, hot reload, formats and templates.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use metamorph_tests::{
    Auth, Backend, Cli, Server, assert_problem, corpus, header, install_plugins, plugin_artifact,
};
use serde_json::Value;

const IMAGE: &str = "metamorph_plugin_image.wasm";
/// The same image plugin compiled natively (feature `native`).
const IMAGE_NATIVE: &str = "libmetamorph_plugin_image.so";
const HOSTILE: &str = "metamorph_fixture_hostile.wasm";
const HOSTILE_NATIVE: &str = "libmetamorph_fixture_hostile.so";
const LIAR: &str = "metamorph_fixture_liar.wasm";

/// What ImageMagick says of an image: `(format, width, height)`.
pub(crate) fn identify(path: &std::path::Path) -> Result<(String, u32, u32)> {
    let output = Command::new("identify")
        .args(["-format", "%m %w %h\\n"])
        .arg(path)
        .output()?;
    ensure!(
        output.status.success(),
        "identify {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout)?;
    let first = text.lines().next().context("identify said nothing")?;
    let mut parts = first.split_whitespace();
    let format = parts.next().context("format")?.to_owned();
    let width = parts.next().context("width")?.parse()?;
    let height = parts.next().context("height")?.parse()?;
    Ok((format, width, height))
}

#[test]
fn hostile_plugins_are_contained_and_the_server_keeps_answering() -> Result<()> {
    let server = Server::builder(Backend::Sqlite)
        .plugins(&[HOSTILE, HOSTILE_NATIVE])
        .env("METAMORPH_PLUGINS__TIME_LIMIT", "2s")
        .env("METAMORPH_PLUGINS__MEMORY_LIMIT", "128MiB")
        .env("METAMORPH_PLUGINS__OUTPUT_LIMIT", "1MiB")
        .start()?;
    let plugins = server.expect("GET", "/api/plugins", &Auth::None, None, 200)?;
    let names: Vec<&str> = plugins["loaded"]
        .as_array()
        .context("loaded")?
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    ensure!(
        names.contains(&"hostile") && names.contains(&"hostile-native"),
        "{plugins}"
    );

    // The hostile plugin makes "templates" of made-up formats that misbehave. Both the
    // WebAssembly build and the native build (in a worker process) are tried.
    let cases = [
        ("hang", 504, "converter_timed_out"),
        ("crash", 502, "converter_failed"),
        ("segfault", 502, "converter_failed"),
        ("flood", 502, "converter_failed"),
    ];
    let health = |server: &Server| -> Result<()> {
        ensure!(
            server.get("/api/health")?.status() == 200,
            "the server still answers"
        );
        Ok(())
    };
    for (format, status, code) in cases {
        let started = std::time::Instant::now();
        let response = server.get(&format!("/api/formats/{format}/template"))?;
        let problem = assert_problem(response, status, code)?;
        ensure!(
            started.elapsed() < Duration::from_secs(10),
            "{format} was not stopped in time"
        );
        ensure!(
            !problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("panics on request"),
            "internals stay in the log"
        );
        health(&server)?;
    }
    // A memory bomb in wasm hits the limiter; natively the worker's data limit.
    let response = server.get("/api/formats/bomb/template")?;
    let status = response.status().as_u16();
    ensure!(status == 422 || status == 502, "bomb answered {status}");
    health(&server)?;
    ensure!(
        server.get("/api/formats/echo/template")?.text()? == "an example of echo\n",
        "a well-behaved call still works"
    );
    Ok(())
}

/// A WebAssembly task's instance goes back to the pool (64 instances) once the task is done,
/// on a thread of its own: many more tasks than the pool holds, after a memory bomb, all
/// find one.
#[test]
fn wasm_instances_go_back_to_the_pool_after_every_task() -> Result<()> {
    let server = Server::builder(Backend::Sqlite)
        .plugins(&[HOSTILE])
        .env("METAMORPH_PLUGINS__MEMORY_LIMIT", "128MiB")
        .env("METAMORPH_RATE_LIMITS__UNAUTHENTICATED__READS", "1000/1m")
        .start()?;
    let response = server.get("/api/formats/bomb/template")?;
    assert_problem(response, 422, "limit_exceeded")?;
    for call in 0..150 {
        let response = server.get("/api/formats/echo/template")?;
        ensure!(
            response.status() == 200,
            "task {call} after the bomb answered {}",
            response.status()
        );
        ensure!(response.text()? == "an example of echo\n", "task {call}");
    }
    Ok(())
}

#[test]
fn conversions_are_contained_in_both_sandboxes_with_typed_errors() -> Result<()> {
    let input_dir = tempfile::tempdir()?;
    let input = input_dir.path().join("in.txt");
    std::fs::write(&input, "hello")?;
    for artifact in [HOSTILE, HOSTILE_NATIVE] {
        let cli = Cli::with_plugins(&[artifact])?
            .env("METAMORPH_PLUGINS__TIME_LIMIT", "2s")
            .env("METAMORPH_PLUGINS__MEMORY_LIMIT", "128MiB")
            .env("METAMORPH_PLUGINS__OUTPUT_LIMIT", "1MiB");
        let echo = cli.convert(&input, "txt", &[r#"behaviour="echo""#])?;
        ensure!(
            echo.success && std::fs::read_to_string(&echo.output)? == "hello",
            "{artifact}: {echo:?}"
        );
        for (behaviour, code) in [
            ("refuse", "malformed_input"),
            ("panic", "converter_failed"),
            ("segfault", "converter_failed"),
            ("loop", "converter_timed_out"),
            ("flood", "limit_exceeded"),
        ] {
            let run = cli.convert(&input, "txt", &[&format!("behaviour=\"{behaviour}\"")])?;
            ensure!(
                !run.success && run.stderr.contains(code),
                "{artifact} {behaviour}: {}",
                run.stderr
            );
            ensure!(
                run.elapsed < Duration::from_secs(10),
                "{artifact} {behaviour} took {:?}",
                run.elapsed
            );
        }
        let bomb = cli.convert(&input, "txt", &[r#"behaviour="allocate""#])?;
        ensure!(!bomb.success, "{artifact}: the allocation bomb fails");
        ensure!(
            bomb.stderr.contains("memory limit") || bomb.stderr.contains("limit_exceeded"),
            "{artifact}: {}",
            bomb.stderr
        );
        let bad = cli.convert(&input, "txt", &[r#"behaviour="dance""#])?;
        ensure!(
            !bad.success && bad.stderr.contains("invalid_options"),
            "{artifact}: {}",
            bad.stderr
        );
    }
    Ok(())
}

#[test]
fn a_lying_plugin_is_refused_with_the_reason_and_listed_as_refused() -> Result<()> {
    let server = Server::builder(Backend::Sqlite)
        .plugins(&[LIAR, IMAGE])
        .start()?;
    let plugins = server.expect("GET", "/api/plugins", &Auth::None, None, 200)?;
    ensure!(
        plugins["loaded"].as_array().map(Vec::len) == Some(1),
        "{plugins}"
    );
    let refused = &plugins["refused"][0];
    ensure!(refused["file"] == LIAR, "{plugins}");
    ensure!(
        refused["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("not JSON"),
        "{refused}"
    );
    ensure!(
        !refused
            .to_string()
            .contains(&server.plugins_dir().display().to_string()),
        "no server paths: {refused}"
    );
    server.wait_for_log(|line| {
        line["message"] == "plugin refused"
            && line["reason"]
                .as_str()
                .is_some_and(|r| r.contains("not JSON"))
    })?;

    let cli = Cli::with_plugins(&[LIAR])?;
    let listed = cli.command()?.args(["plugins", "list"]).output()?;
    let text = String::from_utf8(listed.stdout)?;
    ensure!(text.contains("refused:") && text.contains(LIAR), "{text}");
    let checked = cli
        .command()?
        .args(["plugins", "check"])
        .arg(cli.plugins_dir().join(LIAR))
        .output()?;
    ensure!(
        !checked.status.success(),
        "check exits non-zero for a refused plugin"
    );
    ensure!(
        String::from_utf8_lossy(&checked.stderr).contains("refused"),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    Ok(())
}

fn pairs(server: &Server) -> Result<Vec<(String, String, String)>> {
    let index = server.expect("GET", "/api/convert/formats", &Auth::None, None, 200)?;
    Ok(index["pairs"]
        .as_array()
        .context("pairs")?
        .iter()
        .map(|pair| {
            let field = |name: &str| pair[name].as_str().unwrap_or_default().to_owned();
            (field("plugin"), field("source"), field("target"))
        })
        .collect())
}

fn wait_until(what: &str, condition: impl Fn() -> Result<bool>) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if condition()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!("timed out waiting until {what}")
}

#[test]
fn hot_reload_adds_replaces_and_removes_plugins_while_tasks_finish_on_their_version() -> Result<()>
{
    let server = Server::builder(Backend::Sqlite)
        .env("METAMORPH_PLUGINS__RELOAD_INTERVAL", "200ms")
        .start()?;
    ensure!(pairs(&server)?.is_empty());
    let dir = server.plugins_dir();

    // Added: copied in under a temporary name, then renamed, as an operator should.
    install_plugins(&dir, &[IMAGE])?;
    wait_until("the image plugin is loaded", || {
        Ok(pairs(&server)?
            .iter()
            .any(|(plugin, _, _)| plugin == "image"))
    })?;
    ensure!(server.get("/api/formats/png/template")?.status() == 200);

    // Replaced: the same file name now holds another plugin.
    let replacement = dir.join("replacement.partial");
    std::fs::copy(plugin_artifact(HOSTILE)?, &replacement)?;
    std::fs::rename(&replacement, dir.join(IMAGE))?;
    wait_until("the file's new plugin replaces the old", || {
        let now = pairs(&server)?;
        Ok(now.iter().any(|(plugin, _, _)| plugin == "hostile")
            && !now.iter().any(|(plugin, _, _)| plugin == "image"))
    })?;
    assert_problem(server.get("/api/formats/png/template")?, 404, "not_found")?;

    // A task that started before its plugin was removed finishes on that plugin.
    let url = server.url("/api/formats/slow/template");
    let slow = std::thread::spawn(move || -> Result<(u16, String)> {
        let response = metamorph_tests::http_client()
            .build()?
            .get(url)
            .timeout(Duration::from_secs(30))
            .send()?;
        Ok((response.status().as_u16(), response.text()?))
    });
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(dir.join(IMAGE))?;
    wait_until("the removed plugin is gone", || {
        Ok(pairs(&server)?.is_empty())
    })?;
    let (status, body) = slow
        .join()
        .map_err(|_panic| anyhow::anyhow!("the request thread panicked"))??;
    ensure!(
        status == 200 && body == "an example of slow\n",
        "the running task finished: {status} {body}"
    );
    assert_problem(server.get("/api/formats/slow/template")?, 404, "not_found")?;
    server.wait_for_log(|line| line["message"] == "plugins reloaded")?;
    Ok(())
}

#[test]
fn formats_describe_themselves_and_templates_are_real_files() -> Result<()> {
    let server = Server::builder(Backend::Sqlite).plugins(&[IMAGE]).start()?;
    let formats = server.expect("GET", "/api/formats", &Auth::None, None, 200)?;
    ensure!(
        formats["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|f| f["name"] == "webp"))
    );

    // Any spelling of a format finds it.
    for spelling in ["jpg", "JPEG", ".jpe"] {
        let jpg = server.expect(
            "GET",
            &format!("/api/formats/{spelling}"),
            &Auth::None,
            None,
            200,
        )?;
        ensure!(
            jpg["name"] == "jpg"
                && jpg["media_types"][0] == "image/jpeg"
                && jpg["category"] == "image",
            "{jpg}"
        );
        ensure!(
            jpg["converts_to"]
                .as_array()
                .is_some_and(|to| to.iter().any(|f| f == "webp")),
            "{jpg}"
        );
        ensure!(
            jpg["converts_from"]
                .as_array()
                .is_some_and(|from| from.iter().any(|f| f == "tif")),
            "{jpg}"
        );
        ensure!(jpg["has_template"] == true);
    }
    assert_problem(server.get("/api/formats/nonsense")?, 404, "not_found")?;
    assert_problem(server.get("/api/formats/..%2Fetc")?, 404, "not_found")?;
    assert_problem(server.get("/api/formats/pdf/template")?, 404, "not_found")?;

    let scratch = tempfile::tempdir()?;
    for format in [
        "png", "jpg", "gif", "webp", "bmp", "tif", "ico", "qoi", "pnm", "tga",
    ] {
        let response = server.get(&format!("/api/formats/{format}/template"))?;
        ensure!(response.status() == 200, "{format}: {}", response.status());
        let media_type = header(&response, "content-type");
        let path = scratch.path().join(format!("example.{format}"));
        std::fs::write(&path, response.bytes()?)?;
        if format == "qoi" {
            // ImageMagick 6 does not read QOI; check its signature instead.
            ensure!(std::fs::read(&path)?.starts_with(b"qoif"), "qoi");
            continue;
        }
        let (kind, width, height) = identify(&path)?;
        ensure!(
            (width, height) == (64, 48),
            "{format}: {kind} {width}×{height}"
        );
        ensure!(!media_type.is_empty(), "{format} has a media type");
    }

    let index = server.expect("GET", "/api/convert/formats", &Auth::None, None, 200)?;
    let pair = index["pairs"]
        .as_array()
        .context("pairs")?
        .iter()
        .find(|pair| pair["source"] == "png" && pair["target"] == "jpg")
        .context("png → jpg is listed")?;
    ensure!(
        pair["plugin"] == "image" && pair["kind"] == "wasm" && pair["cost"].as_u64().is_some(),
        "{pair}"
    );
    ensure!(
        pair["options_schema"]["properties"]["quality"].is_object(),
        "{pair}"
    );
    let _: &Value = &index["routes"];
    Ok(())
}

#[test]
fn the_compiled_plugin_is_cached_so_a_restart_loads_it_at_once() -> Result<()> {
    let cli = Cli::with_plugins(&[IMAGE])?;
    let first = cli
        .command()?
        .env("METAMORPH_LOG", "info")
        .args(["--log-format", "json", "plugins", "list"])
        .output()?;
    ensure!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let cache = cli.scratch().join("data/cache/plugins");
    let artifacts: Vec<_> = std::fs::read_dir(&cache)?.filter_map(Result::ok).collect();
    ensure!(artifacts.len() == 1, "one precompiled artifact is cached");
    ensure!(
        artifacts[0]
            .path()
            .extension()
            .is_some_and(|ext| ext == "cwasm")
    );
    let loaded_in = |output: &std::process::Output| -> Result<u64> {
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["message"] == "plugins loaded")
            .and_then(|line| line["elapsed_ms"].as_u64())
            .context("no load time logged")
    };
    let second = cli
        .command()?
        .env("METAMORPH_LOG", "info")
        .args(["--log-format", "json", "plugins", "list"])
        .output()?;
    let (cold, warm) = (loaded_in(&first)?, loaded_in(&second)?);
    ensure!(
        warm <= cold,
        "the cached load ({warm} ms) is not slower than the compile ({cold} ms)"
    );
    Ok(())
}

#[test]
fn every_image_pair_converts_real_files_checked_by_imagemagick() -> Result<()> {
    let cli = Cli::with_plugins(&[IMAGE])?;
    let sources = [
        ("png", "image/png-rgba-alpha.png"),
        ("jpg", "image/jpeg-exif-gps.jpg"),
        ("gif", "image/gif-static.gif"),
        ("webp", "image/webp-lossy.webp"),
        ("bmp", "image/bmp-rgb24.bmp"),
        ("tif", "image/tiff-rgb.tif"),
        ("ico", "image/ico-png-embedded.ico"),
    ];
    // Formats the corpus lacks are made by the plugin's own templates.
    let scratch = cli.scratch();
    let mut inputs: Vec<(String, std::path::PathBuf)> = sources
        .iter()
        .map(|(f, p)| ((*f).to_owned(), corpus(p)))
        .collect();
    for format in ["tga", "qoi", "pnm"] {
        let path = scratch.join(format!("template.{format}"));
        let png = corpus("image/png-palette.png");
        let made = cli.convert(&png, format, &[])?;
        ensure!(made.success, "{format}: {}", made.stderr);
        std::fs::rename(&made.output, &path)?;
        inputs.push((format.to_owned(), path));
    }
    let magick_name = |format: &str| match format {
        "jpg" => "JPEG".to_owned(),
        "tif" => "TIFF".to_owned(),
        "pnm" => "PPM".to_owned(),
        other => other.to_uppercase(),
    };
    for (source, input) in &inputs {
        let (_, width, height) = if source == "qoi" {
            (String::new(), 32, 32)
        } else {
            identify(input)?
        };
        for target in [
            "png", "jpg", "gif", "webp", "bmp", "tif", "ico", "tga", "pnm",
        ] {
            let run = cli.convert(input, target, &[])?;
            ensure!(run.success, "{source} → {target}: {}", run.stderr);
            let (kind, w, h) = identify(&run.output)?;
            if target == "ico" {
                // An ICO holding a PNG image (as Windows Vista and later write them):
                // ImageMagick names the embedded image's format.
                ensure!(
                    std::fs::read(&run.output)?.starts_with(&[0, 0, 1, 0]),
                    "{source} → ico: not an icon directory"
                );
            } else {
                let expected_kind = magick_name(target);
                // BMP3 is a BMP without alpha; PPM, PGM and PAM are all PNM.
                let same =
                    kind.starts_with(&expected_kind) || (target == "pnm" && kind.starts_with('P'));
                ensure!(same, "{source} → {target}: ImageMagick says {kind}");
            }
            let fits = if target == "ico" {
                w <= 256 && h <= 256
            } else {
                (w, h) == (width, height)
            };
            ensure!(
                fits,
                "{source} → {target}: {w}×{h}, expected {width}×{height}"
            );
        }
    }
    Ok(())
}

/// The image plugin's WebAssembly build takes its own SIMD128 paths through the codecs
/// (`vendor/`), where the native build takes x86's: both must write exactly the same bytes
/// (PNG, JPEG and WebP), for every JPEG layout (subsampling, progressive, grey, CMYK, odd
/// sizes) and every PNG filter and pixel size.
#[test]
fn the_sandboxed_image_plugin_writes_the_same_bytes_as_its_native_build() -> Result<()> {
    let wasm = Cli::with_plugins(&[IMAGE])?;
    let native = Cli::with_plugins(&[IMAGE_NATIVE])?;
    let scratch = wasm.scratch();
    let mut inputs: Vec<std::path::PathBuf> = std::fs::read_dir(corpus("image"))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<_>>()?;
    inputs.retain(|path| {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        name.is_some_and(|name| {
            (name.starts_with("jpeg-") || name.starts_with("png-")) && !name.contains("apng")
        })
    });
    inputs.sort();
    // Layouts the corpus lacks, made by ImageMagick from its photo at odd sizes.
    let photo = corpus("image/jpeg-exif-gps.jpg");
    let made = [
        (
            "s420.jpg",
            "-resize 1001x777! -sampling-factor 4:2:0 -quality 80",
        ),
        (
            "s422.jpg",
            "-resize 333x217! -sampling-factor 4:2:2 -quality 85",
        ),
        (
            "s444.jpg",
            "-resize 257x129! -sampling-factor 4:4:4 -quality 95",
        ),
        ("progressive.jpg", "-resize 301x203! -interlace JPEG"),
        (
            "paeth-rgb.png",
            "-resize 333x217! -define png:compression-filter=4",
        ),
        (
            "paeth-rgba.png",
            "-resize 201x99! -alpha set -channel A -evaluate set 60% +channel \
             -define png:compression-filter=4",
        ),
        (
            "paeth-grey.png",
            "-resize 97x31! -colorspace gray -define png:compression-filter=4",
        ),
        (
            "paeth-rgb16.png",
            "-resize 150x77! -depth 16 -define png:compression-filter=4",
        ),
        (
            "adaptive-rgb.png",
            "-resize 640x480! -define png:compression-filter=5",
        ),
    ];
    for (name, args) in made {
        let path = scratch.join(name);
        imagemagick(&[&photo], args, &path)?;
        inputs.push(path);
    }
    let mut compared = 0;
    for input in &inputs {
        let name = input.display();
        for (target, options) in [
            ("png", &[][..]),
            ("jpg", &[][..]),
            ("webp", &[][..]),
            ("png", &["width=333"][..]),
        ] {
            let ours = wasm.convert(input, target, options)?;
            let reference = native.convert(input, target, options)?;
            ensure!(
                ours.success == reference.success,
                "{name} → {target}: wasm {} / native {}",
                ours.stderr,
                reference.stderr
            );
            if !ours.success {
                continue;
            }
            compared += 1;
            if std::fs::read(&ours.output)? == std::fs::read(&reference.output)? {
                continue;
            }
            // Resizing 16-bit RGBA premultiplies alpha, rounding the last bit differently with
            // x86's vector instructions: at most one level in 65 535 may differ there.
            let peak = peak_error(&ours.output, &reference.output)?;
            ensure!(
                !options.is_empty() && name.to_string().contains("16bit") && peak <= 1.5,
                "{name} → {target} {options:?}: the wasm build wrote other pixels than the \
                 native build (peak difference {peak} of 65535)"
            );
        }
    }
    ensure!(compared >= 100, "only {compared} conversions compared");
    Ok(())
}

/// The JPEG writer (a patched copy under `vendor/`, shared by both builds, so the test above
/// cannot see its mistakes) keeps the picture: the output, decoded by ImageMagick, stays
/// close to its lossless source at every quality.
#[test]
fn jpeg_output_stays_close_to_its_source() -> Result<()> {
    let cli = Cli::with_plugins(&[IMAGE])?;
    let source = cli.scratch().join("photo.png");
    imagemagick(
        &[corpus("image/jpeg-exif-gps.jpg")],
        "-resize 641x479!",
        &source,
    )?;
    for (quality, least) in [(95, 37.0), (75, 26.0), (30, 22.0)] {
        let option = format!("quality={quality}");
        let jpeg = cli.convert(&source, "jpg", &[&option])?;
        ensure!(jpeg.success, "quality {quality}: {}", jpeg.stderr);
        let psnr = psnr(&source, &jpeg.output)?;
        ensure!(
            psnr >= least,
            "quality {quality}: the JPEG is {psnr:.1} dB from its source, below {least} dB"
        );
    }
    Ok(())
}

/// The JPEG reader (a patched copy under `vendor/`, shared by both builds, so the byte
/// comparison above cannot see its mistakes) decodes what libjpeg decodes: ImageMagick's
/// reading of each JPEG and the plugin's PNG of it agree to rounding. A Huffman decoder that
/// loses its place (a refill, a stuffed 0xFF byte, a restart marker) turns the rest of the
/// image into noise, far below the bound.
#[test]
fn jpeg_input_decodes_as_libjpeg_decodes_it() -> Result<()> {
    let cli = Cli::with_plugins(&[IMAGE])?;
    let mut inputs: Vec<std::path::PathBuf> = [
        "jpeg-exif-gps.jpg",
        "jpeg-progressive.jpg",
        "jpeg-grayscale.jpg",
        "jpeg-orientation-6.jpg",
    ]
    .iter()
    .map(|name| corpus(&format!("image/{name}")))
    .collect();
    // Layouts the corpus lacks: a restart marker after every MCU, and noise at the highest
    // quality, whose long codes and many 0xFF bytes (each followed by a stuffed zero) make
    // most refills leave the fast path.
    let photo = corpus("image/jpeg-exif-gps.jpg");
    let made: [(&str, Vec<std::ffi::OsString>, &str); 4] = [
        (
            "restarts.jpg",
            vec![photo.into_os_string()],
            "-resize 333x217! -define jpeg:restart-interval=1",
        ),
        (
            "noise420.jpg",
            vec!["-size".into(), "259x131".into(), "xc:gray".into()],
            "-seed 7 +noise Random -quality 100 -sampling-factor 4:2:0",
        ),
        (
            "noise444.jpg",
            vec!["-size".into(), "200x150".into(), "xc:gray".into()],
            "-seed 9 +noise Random -quality 100 -sampling-factor 4:4:4",
        ),
        (
            "noise422-restarts.jpg",
            vec!["-size".into(), "301x77".into(), "xc:gray".into()],
            "-seed 11 +noise Random -quality 97 -sampling-factor 4:2:2 \
             -define jpeg:restart-interval=3",
        ),
    ];
    for (name, source, args) in made {
        let path = cli.scratch().join(name);
        imagemagick(&source, args, &path)?;
        inputs.push(path);
    }
    for input in &inputs {
        let name = input.display();
        let png = cli.convert(input, "png", &["auto_orient=false"])?;
        ensure!(png.success, "{name} → png: {}", png.stderr);
        let psnr = psnr(input, &png.output)?;
        ensure!(
            psnr >= 38.0,
            "{name}: the plugin decoded other pixels than libjpeg ({psnr:.1} dB apart)"
        );
    }
    Ok(())
}

/// Runs ImageMagick's `convert <inputs> <args> <output>`: `args` are split at whitespace.
fn imagemagick(
    inputs: &[impl AsRef<std::ffi::OsStr>],
    args: &str,
    output: &std::path::Path,
) -> Result<()> {
    let status = Command::new("convert")
        .args(inputs)
        .args(args.split_whitespace())
        .arg(output)
        .status()?;
    ensure!(
        status.success(),
        "ImageMagick could not make {} ({args})",
        output.display()
    );
    Ok(())
}

/// What ImageMagick's `compare -metric <metric>` prints for two images. It prints the value
/// on standard error and exits 1 when the images differ, 2 on trouble.
fn compare_metric(metric: &str, a: &std::path::Path, b: &std::path::Path) -> Result<String> {
    let output = Command::new("compare")
        .args(["-metric", metric])
        .arg(a)
        .arg(b)
        .arg("null:")
        .output()?;
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    ensure!(output.status.code() != Some(2), "compare: {text}");
    Ok(text)
}

/// The WebP writer (a patched copy under `vendor/`, shared by both builds, so the byte
/// comparison above cannot see its mistakes) is lossless: ImageMagick decodes exactly the
/// pixels of the source, with and without alpha.
#[test]
fn webp_output_keeps_every_pixel() -> Result<()> {
    let cli = Cli::with_plugins(&[IMAGE])?;
    let sources = [
        ("photo-rgb.png", "-resize 641x479!"),
        (
            "photo-rgba.png",
            "-resize 333x217! -alpha set -channel A -evaluate set 60% +channel",
        ),
    ];
    for (name, args) in sources {
        let source = cli.scratch().join(name);
        imagemagick(&[corpus("image/jpeg-exif-gps.jpg")], args, &source)?;
        let webp = cli.convert(&source, "webp", &[])?;
        ensure!(webp.success, "{name} → webp: {}", webp.stderr);
        let peak = peak_error(&source, &webp.output)?;
        ensure!(
            peak == 0.0,
            "{name} → webp: pixels differ from the source (peak difference {peak} of 65535)"
        );
    }
    Ok(())
}

/// ImageMagick's peak signal-to-noise ratio between two images, in decibels.
fn psnr(a: &std::path::Path, b: &std::path::Path) -> Result<f64> {
    let text = compare_metric("PSNR", a, b)?;
    let value = text
        .split_whitespace()
        .next()
        .context("compare printed nothing")?;
    if value == "inf" {
        return Ok(f64::INFINITY);
    }
    Ok(value.parse()?)
}

/// ImageMagick's largest difference of one channel between two images, in 16-bit levels
/// (it prints "<levels> (<fraction>)").
fn peak_error(a: &std::path::Path, b: &std::path::Path) -> Result<f64> {
    let text = compare_metric("PAE", a, b)?;
    let fraction: f64 = text
        .split(['(', ')'])
        .nth(1)
        .context("compare printed no difference")?
        .trim()
        .parse()?;
    Ok(fraction * 65535.0)
}

#[test]
fn malformed_images_and_bombs_fail_typed_and_fast() -> Result<()> {
    let cli = Cli::with_plugins(&[IMAGE])?.env("METAMORPH_PLUGINS__MEMORY_LIMIT", "64MiB");
    for file in [
        "malformed/png-bad-ihdr-crc.png",
        "malformed/png-bad-ihdr-crc.png",
        "malformed/jpeg-truncated.jpg",
        "malformed/bmp-short.bmp",
        "malformed/webp-fuzzed-vp8l.webp",
        "malformed/tiff-bad-strip.tif",
        "malformed/gif-truncated.gif",
        "malformed/png-truncated.png",
        "malformed/jpeg-bad-exif.jpg",
    ] {
        let run = cli.convert(&corpus(file), "png", &[])?;
        let typed = run.stderr.contains("malformed_input");
        ensure!(run.success || typed, "{file}: {}", run.stderr);
        ensure!(
            !run.stderr.contains("converter_failed") && !run.stderr.contains("timed_out"),
            "{file}: {}",
            run.stderr
        );
        if run.success {
            identify(&run.output)?;
        }
    }
    // A PNG declaring 100 000 × 100 000 pixels, refused before anything is allocated, even
    // with a 64 MiB memory limit.
    let bomb = cli.scratch().join("bomb.png");
    std::fs::write(&bomb, png_bomb())?;
    let run = cli.convert(&bomb, "jpg", &[])?;
    ensure!(
        !run.success && run.stderr.contains("limit_exceeded") && run.stderr.contains("30000"),
        "{}",
        run.stderr
    );
    ensure!(
        run.elapsed < Duration::from_secs(5),
        "refused quickly: {:?}",
        run.elapsed
    );
    Ok(())
}

/// A task takes the instance made ahead, on the releasing thread, after the task before it:
/// one after another, conversions of different images each answer with their own image, and
/// a task that fails leaves the next one a clean instance.
#[test]
fn consecutive_tasks_each_convert_their_own_input() -> Result<()> {
    use super::jobs::{anonymous, convert_form, download};
    let server = Server::builder(Backend::Sqlite).plugins(&[IMAGE]).start()?;
    let auth = anonymous(&server)?;
    let dir = tempfile::tempdir()?;
    for (round, file) in [
        "image/png-exif.png",
        "image/bmp-rgb24.bmp",
        "malformed/png-bad-ihdr-crc.png",
        "image/jpeg-exif-gps.jpg",
        "image/gif-static.gif",
        "image/png-exif.png",
        "image/jpeg-grayscale.jpg",
    ]
    .into_iter()
    .enumerate()
    {
        let input = corpus(file);
        let response = convert_form(
            &server,
            &auth,
            &input,
            &[("target_format", "png")],
            "?wait=30",
            &[],
        )?;
        ensure!(response.status() == 201, "{file}: {}", response.status());
        let job: Value = response.json()?;
        if file.starts_with("malformed/") {
            ensure!(job["status"]["code"] == "failed", "{file}: {job}");
            continue;
        }
        ensure!(job["status"]["code"] == "completed", "{file}: {job}");
        let folder = dir.path().join(round.to_string());
        std::fs::create_dir(&folder)?;
        let output = download(&server, &job["outputs"][0], &folder)?;
        let (_, width, height) = identify(&input)?;
        let (format, w, h) = identify(&output)?;
        ensure!(
            format == "PNG" && (w, h) == (width, height),
            "{file}: {format} {w}x{h}, where the input is {width}x{height}"
        );
    }
    Ok(())
}

/// Under the smallest memory limit the host accepts (16 MiB) the image plugin converts a
/// photo, and a task that needs more than the limit fails with the limit named.
#[test]
fn the_image_plugin_runs_under_the_smallest_memory_limit() -> Result<()> {
    let cli = Cli::with_plugins(&[IMAGE])?.env("METAMORPH_PLUGINS__MEMORY_LIMIT", "16MiB");
    let photo = corpus("image/jpeg-exif-gps.jpg");
    for target in ["png", "webp"] {
        let run = cli.convert(&photo, target, &[])?;
        ensure!(run.success, "to {target}: {}", run.stderr);
        let (format, width, height) = identify(&run.output)?;
        ensure!(
            format == target.to_uppercase() && (width, height) == (640, 480),
            "to {target}: {format} {width}x{height}"
        );
    }
    // 4000 × 3000 RGB is 36 MB before any buffer of the codecs.
    let run = cli.convert(&photo, "png", &["width=4000"])?;
    ensure!(
        !run.success && run.stderr.contains("limit_exceeded"),
        "{}",
        run.stderr
    );
    Ok(())
}

/// Image data is checked against its chunk's CRC in both builds, long chunks included (they
/// take the CRC's block-wise path, and the decoder hashes the data at hand ahead of the
/// inflater, see `vendor/README.md`): one bit off in the checksum of a 32 KiB `IDAT` chunk in
/// the middle of a PNG makes it malformed input, where the intact file converts.
#[test]
fn image_data_that_fails_its_checksum_is_malformed() -> Result<()> {
    let wasm = Cli::with_plugins(&[IMAGE])?;
    let native = Cli::with_plugins(&[IMAGE_NATIVE])?;
    let intact = wasm.scratch().join("intact.png");
    imagemagick(
        &[corpus("image/jpeg-exif-gps.jpg")],
        "-resize 1200x900! -define png:compression-level=1",
        &intact,
    )?;
    let mut png = std::fs::read(&intact)?;
    // Chunks after the signature: (offset of the data, length, type).
    let mut chunks = Vec::new();
    let mut at = 8;
    while at + 12 <= png.len() {
        let length = u32::from_be_bytes(png[at..at + 4].try_into()?) as usize;
        chunks.push((at + 8, length, png[at + 4..at + 8].to_vec()));
        at += 12 + length;
    }
    let idat: Vec<_> = chunks.iter().filter(|chunk| chunk.2 == b"IDAT").collect();
    ensure!(idat.len() >= 3, "{} IDAT chunks", idat.len());
    let (data, length, _) = idat[idat.len() / 2];
    ensure!(
        *length >= 16 * 1024,
        "the middle IDAT chunk holds {length} bytes"
    );
    png[data + length + 3] ^= 0x10;
    let damaged = wasm.scratch().join("damaged.png");
    std::fs::write(&damaged, &png)?;
    for (build, cli) in [("wasm", &wasm), ("native", &native)] {
        let good = cli.convert(&intact, "bmp", &[])?;
        ensure!(good.success, "{build}: {}", good.stderr);
        let bad = cli.convert(&damaged, "bmp", &[])?;
        ensure!(
            !bad.success
                && bad.stderr.contains("malformed_input")
                && bad.stderr.contains("CRC error"),
            "{build}: {}",
            bad.stderr
        );
    }
    Ok(())
}

/// A PNG header claiming 100 000 × 100 000 RGBA pixels, with a valid checksum.
fn png_bomb() -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend(100_000_u32.to_be_bytes());
    chunk.extend(100_000_u32.to_be_bytes());
    chunk.extend([8, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13_u32.to_be_bytes());
    png.extend(&chunk);
    png.extend(crc32fast::hash(&chunk).to_be_bytes());
    png.extend(0_u32.to_be_bytes());
    png.extend(b"IEND");
    png.extend(crc32fast::hash(b"IEND").to_be_bytes());
    png
}
