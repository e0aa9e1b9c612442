//! Plugin speed, each measurement against its reference in the same run:
//!
//! - the image plugin in its WebAssembly sandbox against the very same crate compiled
//!   natively (feature `native`, same profile), both run through the host's runtime;
//! - instantiating a cached component for one task (criterion);
//! - the av plugin against the `ffmpeg` command line with the same input and settings.
//!
//! A measurement and its reference run as a pair: each round runs both once, back to back,
//! the order alternating from round to round, so that a slow spell of this shared machine
//! slows both rather than whichever happened to be running. The ratio reported is the
//! median of the rounds' ratios, with its interquartile range and the ratio of the fastest
//! run of each.
//!
//! `cargo xtask bench plugins` builds the plugins, prepares the inputs, runs this and
//! prints the ratios. It passes two folders: `METAMORPH_BENCH_PLUGINS` (`wasm/` and
//! `native/` plugin folders) and `METAMORPH_BENCH_INPUTS` (the files converted), and
//! `METAMORPH_BENCH_REPORT`, a file that receives one tab-separated line per pair. Arguments
//! that are not options filter the measurements by name, as with criterion.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use metamorph::config::Config;
use metamorph::plugins::{Plan, PluginRuntime};
use metamorph_plugin_api::FormatName;
use serde_json::{Value, json};

struct Setup {
    plugins: PathBuf,
    inputs: PathBuf,
    scratch: tempfile::TempDir,
    /// Where the pairs' results go (`METAMORPH_BENCH_REPORT`), if anywhere.
    report: Option<PathBuf>,
    /// Names on the command line: only measurements whose name contains one of them run.
    filters: Vec<String>,
}

/// Criterion's options that take a value (skipped when looking for name filters).
const VALUE_OPTIONS: &[&str] = &[
    "--baseline",
    "--color",
    "--confidence-level",
    "--format",
    "--load-baseline",
    "--measurement-time",
    "--noise-threshold",
    "--nresamples",
    "--output-format",
    "--plotting-backend",
    "--profile-time",
    "--sample-size",
    "--save-baseline",
    "--significance-level",
    "--warm-up-time",
];

/// Rounds a pair runs at least, whatever its time budget.
const MIN_ROUNDS: usize = 10;

impl Setup {
    fn from_env() -> Option<Self> {
        let plugins = PathBuf::from(std::env::var_os("METAMORPH_BENCH_PLUGINS")?);
        let inputs = PathBuf::from(std::env::var_os("METAMORPH_BENCH_INPUTS")?);
        let report = std::env::var_os("METAMORPH_BENCH_REPORT").map(PathBuf::from);
        if let Some(report) = &report {
            std::fs::write(report, "").expect("the report file can be written");
        }
        let mut filters = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if VALUE_OPTIONS.contains(&arg.as_str()) {
                args.next();
            } else if !arg.starts_with('-') {
                filters.push(arg);
            }
        }
        Some(Self {
            plugins,
            inputs,
            scratch: tempfile::tempdir().expect("temp dir"),
            report,
            filters,
        })
    }

    /// Whether the command line asks for the measurement `name`.
    fn wanted(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|filter| name.contains(filter))
    }

    /// Measures `ours` against `reference` in rounds, both once per round and back to back,
    /// the order alternating, for about `budget` (and at least [`MIN_ROUNDS`] rounds) after
    /// one unmeasured round. Prints the medians and the median of the rounds' ratios with
    /// its interquartile range, and appends them to the report.
    fn pair(
        &self,
        group: &str,
        ours: (&str, &mut dyn FnMut()),
        reference: (&str, &mut dyn FnMut()),
        budget: Duration,
    ) {
        let (ours_name, ours) = ours;
        let (reference_name, reference) = reference;
        let time = |run: &mut dyn FnMut()| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        };
        ours();
        reference();
        let started = Instant::now();
        let mut rounds: Vec<(f64, f64)> = Vec::new();
        while rounds.len() < MIN_ROUNDS || started.elapsed() < budget {
            let round = if rounds.len().is_multiple_of(2) {
                let ours = time(ours);
                (ours, time(reference))
            } else {
                let reference = time(reference);
                (time(ours), reference)
            };
            rounds.push(round);
        }
        let ours_times: Vec<f64> = rounds.iter().map(|round| round.0).collect();
        let reference_times: Vec<f64> = rounds.iter().map(|round| round.1).collect();
        let ratios: Vec<f64> = rounds
            .iter()
            .map(|(ours, reference)| ours / reference)
            .collect();
        let result = PairResult {
            ours: quantile(ours_times.clone(), 0.5),
            reference: quantile(reference_times.clone(), 0.5),
            ratio: quantile(ratios.clone(), 0.5),
            ratio_low: quantile(ratios.clone(), 0.25),
            ratio_high: quantile(ratios, 0.75),
            fastest_ratio: quantile(ours_times, 0.0) / quantile(reference_times, 0.0),
            rounds: rounds.len(),
        };
        println!(
            "{group}: {ours_name} {} vs {reference_name} {} → {:.2}× (interquartile {:.2}–{:.2}×; fastest runs {:.2}×; {} rounds)",
            milliseconds(result.ours),
            milliseconds(result.reference),
            result.ratio,
            result.ratio_low,
            result.ratio_high,
            result.fastest_ratio,
            result.rounds
        );
        if let Some(report) = &self.report {
            let line = format!(
                "{group}\t{ours_name}\t{reference_name}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                result.ours * 1e9,
                result.reference * 1e9,
                result.ratio,
                result.ratio_low,
                result.ratio_high,
                result.fastest_ratio,
                result.rounds
            );
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(report)
                .expect("the report file opens");
            std::io::Write::write_all(&mut file, line.as_bytes()).expect("the report is written");
        }
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

/// What a pair measured: median times in seconds, the median and quartiles of the rounds'
/// ratios, and the ratio of the fastest run of each (the runs least disturbed by the rest
/// of the machine).
struct PairResult {
    ours: f64,
    reference: f64,
    ratio: f64,
    ratio_low: f64,
    ratio_high: f64,
    fastest_ratio: f64,
    rounds: usize,
}

/// The `q` quantile (0 to 1) of `values`, the nearest sample.
fn quantile(mut values: Vec<f64>, q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

fn milliseconds(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1e3)
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
    // Each case's plan and output on both sides, in the order of `cases`.
    let prepared: Vec<_> = cases
        .iter()
        .map(|(name, input, source, target, options)| {
            let side = |side: &str, runtime: &PluginRuntime| {
                let output = setup.output(&format!("{side}-{name}.{target}"));
                (plan(runtime, source, target, options), output)
            };
            (*name, *input, side("wasm", &wasm), side("native", &native))
        })
        .collect();
    // Every case runs once on both sides before any is measured, whatever the filter, so
    // that a case measures the same alone or after the others: in the state of a service
    // that has run a mix of conversions. (Before the native worker kept its heap, see
    // `keep_heap` in `metamorph::plugins::worker`, its JPEG → PNG measured 25 ms alone and
    // 21 ms after the PNG cases.)
    for (_, input, (wasm_plan, wasm_output), (native_plan, native_output)) in &prepared {
        convert(&wasm, wasm_plan, input, wasm_output);
        convert(&native, native_plan, input, native_output);
    }
    for (name, input, (wasm_plan, wasm_output), (native_plan, native_output)) in &prepared {
        let group = format!("image_{name}");
        if !setup.wanted(&group) {
            continue;
        }
        setup.pair(
            &group,
            ("wasm", &mut || {
                convert(&wasm, wasm_plan, input, wasm_output);
            }),
            ("native", &mut || {
                convert(&native, native_plan, input, native_output);
            }),
            Duration::from_secs(10),
        );
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
fn av(setup: &Setup) {
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
        let group = format!("av_{name}");
        if !setup.wanted(&group) {
            continue;
        }
        let plan = plan(&native, &source, target, &options);
        let plugin_output = setup.output(&format!("plugin-{name}.{target}"));
        let ffmpeg_output = setup.output(&format!("ffmpeg-{name}.{target}"));
        setup.pair(
            &group,
            ("plugin", &mut || {
                convert(&native, &plan, &input, &plugin_output);
            }),
            ("ffmpeg_cli", &mut || {
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
                    .arg(&ffmpeg_output)
                    .status()
                    .expect("ffmpeg runs");
                assert!(status.success(), "ffmpeg failed");
            }),
            Duration::from_secs(20),
        );
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
        av(&setup);
    }
    criterion.final_summary();
}
