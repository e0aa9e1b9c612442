//! Plugin speed, each measurement against its reference in the same run:
//!
//! - the image plugin in its WebAssembly sandbox against the very same crate compiled
//!   natively (feature `native`, same profile), both run through the host's runtime;
//! - instantiating a cached component for one task;
//! - the av plugin against the `ffmpeg` command line with the same input and settings.
//!
//! `cargo xtask bench plugins` builds the plugins, prepares the inputs, runs this and
//! prints the ratios. It passes two folders: `METAMORPH_BENCH_PLUGINS` (`wasm/` and
//! `native/` plugin folders) and `METAMORPH_BENCH_INPUTS` (the files converted).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use metamorph::config::Config;
use metamorph::plugins::{Plan, PluginRuntime};
use metamorph_plugin_api::FormatName;
use serde_json::{Value, json};

struct Setup {
    plugins: PathBuf,
    inputs: PathBuf,
    scratch: tempfile::TempDir,
}

impl Setup {
    fn from_env() -> Option<Self> {
        let plugins = PathBuf::from(std::env::var_os("METAMORPH_BENCH_PLUGINS")?);
        let inputs = PathBuf::from(std::env::var_os("METAMORPH_BENCH_INPUTS")?);
        Some(Self {
            plugins,
            inputs,
            scratch: tempfile::tempdir().expect("temp dir"),
        })
    }

    /// A runtime loading the plugins of `plugins/<kind>`.
    fn runtime(&self, kind: &str) -> Arc<PluginRuntime> {
        let mut config = Config::from_sources(None, &[])
            .expect("default config")
            .plugins;
        config.dirs = vec![self.plugins.join(kind)];
        // The artifact cache of earlier runs is kept: a restart loads from it.
        config.cache_dir = self.plugins.join("cache");
        config.work_dir = self.scratch.path().join(kind);
        config.limits.time = Duration::from_secs(600);
        let runtime = PluginRuntime::start(&config).expect("plugin runtime");
        let catalog = runtime.catalog();
        assert!(
            catalog.refused.is_empty(),
            "refused plugins: {:?}",
            catalog.refused
        );
        runtime
    }

    fn output(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }
}

fn plan(runtime: &PluginRuntime, source: &str, target: &str, options: &Value) -> Plan {
    let parse = |name: &str| FormatName::parse(name).expect("format");
    runtime
        .plan(&parse(source), &parse(target), options)
        .expect("a route")
}

fn convert(runtime: &PluginRuntime, plan: &Plan, input: &Path, output: &Path) {
    runtime
        .run(plan, input, output, &|_| {})
        .expect("conversion");
}

/// The same image conversions in the sandbox and natively.
fn image(c: &mut Criterion, setup: &Setup) {
    let wasm = setup.runtime("wasm");
    let native = setup.runtime("native");
    let photo_png = setup.inputs.join("photo.png");
    let photo_jpg = setup.inputs.join("photo.jpg");
    let cases = [
        (
            "png_to_jpg",
            &photo_png,
            "png",
            "jpg",
            json!({ "quality": 85 }),
        ),
        ("png_to_webp", &photo_png, "png", "webp", json!({})),
        ("jpg_to_png", &photo_jpg, "jpg", "png", json!({})),
        (
            "jpg_resize_to_jpg",
            &photo_jpg,
            "jpg",
            "jpg",
            json!({ "width": 800 }),
        ),
    ];
    for (name, input, source, target, options) in cases {
        let mut group = c.benchmark_group(format!("image_{name}"));
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(8));
        for (label, runtime) in [("wasm", &wasm), ("native", &native)] {
            let plan = plan(runtime, source, target, &options);
            let output = setup.output(&format!("{label}-{name}.{target}"));
            group.bench_function(label, |b| {
                b.iter(|| convert(runtime, &plan, input, &output));
            });
        }
        group.finish();
    }

    // Instantiation of the cached component for one task, against a whole conversion.
    let catalog = wasm.catalog();
    let plugin = catalog.plugin("image").expect("the image plugin");
    let mut group = c.benchmark_group("instantiate");
    group.bench_function("image_component", |b| {
        b.iter(|| {
            plugin
                .instantiate_once()
                .expect("a wasm plugin")
                .expect("instantiation")
        });
    });
    group.finish();
}

/// The av plugin against the `ffmpeg` command line on the same input and settings.
fn av(c: &mut Criterion, setup: &Setup) {
    let native = setup.runtime("av");
    // (name, input, target, plugin options, the same settings for ffmpeg)
    let cases: [(&str, &str, &str, Value, &[&str]); 3] = [
        (
            "wav_to_mp3",
            "tone.wav",
            "mp3",
            json!({ "bitrate": 192 }),
            &["-c:a", "libmp3lame", "-b:a", "192k"],
        ),
        (
            "wav_to_flac",
            "tone.wav",
            "flac",
            json!({}),
            &["-c:a", "flac"],
        ),
        (
            "mp4_to_mkv_scaled",
            "clip.mp4",
            "mkv",
            json!({ "width": 640, "height": 360 }),
            &["-vf", "scale=640:360", "-c:v", "libx264", "-c:a", "aac"],
        ),
    ];
    for (name, input, target, options, ffmpeg_args) in cases {
        let input = setup.inputs.join(input);
        let source = input
            .extension()
            .and_then(|ext| ext.to_str())
            .expect("extension")
            .to_owned();
        let mut group = c.benchmark_group(format!("av_{name}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(20));
        let plan = plan(&native, &source, target, &options);
        let output = setup.output(&format!("plugin-{name}.{target}"));
        group.bench_function("plugin", |b| {
            b.iter(|| convert(&native, &plan, &input, &output));
        });
        let output = setup.output(&format!("ffmpeg-{name}.{target}"));
        group.bench_function("ffmpeg_cli", |b| {
            b.iter(|| {
                let status = Command::new("ffmpeg")
                    .args([
                        "-nostdin",
                        "-loglevel",
                        "error",
                        "-y",
                        "-threads",
                        "0",
                        "-i",
                    ])
                    .arg(&input)
                    .args(ffmpeg_args)
                    .arg(&output)
                    .status()
                    .expect("ffmpeg runs");
                assert!(status.success(), "ffmpeg failed");
            });
        });
        group.finish();
    }
}

fn main() {
    // Native plugins run in worker processes of "the current binary"; here that is this
    // benchmark, which then serves as the worker.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("plugin-worker") {
        let value = |flag: &str| {
            let at = args
                .iter()
                .position(|arg| arg == flag)
                .expect("worker flag");
            args[at + 1].clone()
        };
        let library = PathBuf::from(value("--library"));
        let memory = value("--memory").parse().expect("memory");
        let output = value("--output").parse().expect("output");
        if let Err(error) = metamorph::plugins::worker::run(&library, memory, output) {
            eprintln!("plugin worker: {error:#}");
            std::process::exit(1);
        }
        return;
    }
    let Some(setup) = Setup::from_env() else {
        eprintln!(
            "the plugin benchmarks need built plugins and inputs: run `cargo xtask bench plugins`"
        );
        return;
    };
    let mut criterion = Criterion::default().configure_from_args();
    image(&mut criterion, &setup);
    if setup.plugins.join("av").is_dir() {
        av(&mut criterion, &setup);
    }
    criterion.final_summary();
}
