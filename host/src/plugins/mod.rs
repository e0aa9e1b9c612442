//! The plugin runtime: discovery, sandboxed execution, the capability graph and routes.
//!
//! Plugins are files in the configured folders: `.wasm` components and native libraries
//! (`.so`). Each is loaded, asked to describe itself, and checked; a plugin whose
//! description does not hold is refused, with the reason, and listed as refused. The loaded
//! ones form a [`Catalog`]: an immutable snapshot holding the plugins and the capability
//! graph. [`PluginRuntime::rescan`] builds a new snapshot when files were added, changed or
//! removed and swaps it in; a task holds the `Arc` of the plugins it started with, so it
//! finishes on that version whatever happens to the files meanwhile.

pub mod described;
pub mod graph;
pub mod limits;
pub mod native;
pub mod wasm;
pub mod worker;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use metamorph_plugin_api::{ConvertError, ErrorKind, FormatName, KNOWN_FORMATS};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::{PluginsConfig, TaskLimits};
use crate::error::{ApiError, ErrorCode, FieldError};
use described::{Described, OptionsSchema};
use graph::{Edge, Graph};
use limits::Limits;
use native::NativePlugin;
use wasm::{WasmEngine, WasmPlugin};

/// Why a plugin call failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin ran and refused, with its own typed error.
    #[error("{}", .0.message)]
    Rejected(ConvertError),
    /// No plugin, or chain of plugins, converts this pair.
    #[error("no plugin converts `{source_format}` to `{target}`")]
    NoRoute {
        /// The input's format.
        source_format: String,
        /// The format asked for.
        target: String,
    },
    /// The options do not fit the route.
    #[error("the options are not valid for this conversion")]
    InvalidOptions(Vec<FieldError>),
    /// A limit was reached: memory, output size.
    #[error("{0}")]
    LimitExceeded(String),
    /// The plugin trapped, panicked or crashed.
    #[error("{0}")]
    Crashed(String),
    /// The plugin ran past its time limit.
    #[error("the conversion took longer than its limit of {0:?}")]
    TimedOut(Duration),
    /// Something around the plugin failed (files, processes).
    #[error("{0}")]
    Internal(String),
}

impl PluginError {
    /// The API error code this failure answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Rejected(rejection) => match rejection.kind {
                ErrorKind::Unsupported => ErrorCode::UnsupportedConversion,
                ErrorKind::InvalidOptions => ErrorCode::InvalidOptions,
                ErrorKind::MalformedInput => ErrorCode::MalformedInput,
                ErrorKind::LimitExceeded => ErrorCode::LimitExceeded,
                _ => ErrorCode::ConverterFailed,
            },
            Self::NoRoute { .. } => ErrorCode::UnsupportedConversion,
            Self::InvalidOptions(_) => ErrorCode::InvalidOptions,
            Self::LimitExceeded(_) => ErrorCode::LimitExceeded,
            Self::Crashed(_) => ErrorCode::ConverterFailed,
            Self::TimedOut(_) => ErrorCode::ConverterTimedOut,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<PluginError> for ApiError {
    fn from(error: PluginError) -> Self {
        let code = error.code();
        match error {
            PluginError::Rejected(rejection) if code == ErrorCode::ConverterFailed => {
                ApiError::new(
                    code,
                    "the converter failed; it has been logged with the request id",
                )
                .with_source(rejection)
            }
            PluginError::Rejected(rejection) => ApiError::new(code, rejection.message),
            PluginError::NoRoute { .. } => {
                ApiError::new(ErrorCode::UnsupportedConversion, error.to_string())
            }
            PluginError::InvalidOptions(errors) => {
                let summary = errors
                    .iter()
                    .map(|error| format!("{} {}", error.path, error.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                ApiError::new(
                    ErrorCode::InvalidOptions,
                    format!("the options are not valid: {summary}"),
                )
                .with_field_errors(errors)
            }
            PluginError::LimitExceeded(message) => ApiError::new(ErrorCode::LimitExceeded, message),
            PluginError::Crashed(_) => ApiError::new(
                ErrorCode::ConverterFailed,
                "the converter crashed; it has been logged with the request id",
            )
            .with_source(error),
            PluginError::TimedOut(limit) => ApiError::new(
                ErrorCode::ConverterTimedOut,
                format!(
                    "the conversion took longer than its limit of {}",
                    humantime::format_duration(limit)
                ),
            ),
            PluginError::Internal(_) => ApiError::internal(error),
        }
    }
}

/// How a plugin runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// A WebAssembly component, in the sandbox.
    Wasm,
    /// A native library, in a worker process.
    Native,
}

impl PluginKind {
    /// `wasm` or `native`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wasm => "wasm",
            Self::Native => "native",
        }
    }
}

enum Backend {
    Wasm(WasmPlugin),
    Native(NativePlugin),
}

/// A loaded plugin.
pub struct LoadedPlugin {
    /// Its checked description.
    pub described: Described,
    /// How it runs.
    pub kind: PluginKind,
    /// Its file.
    pub file: PathBuf,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Its task limits.
    pub limits: Limits,
    backend: Backend,
}

impl LoadedPlugin {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.described.info.name
    }

    /// Converts one file, blocking.
    pub fn convert(
        &self,
        files: &TaskFiles,
        source: &str,
        target: &str,
        options: &str,
    ) -> Result<(), PluginError> {
        match &self.backend {
            Backend::Wasm(plugin) => plugin.convert(files, source, target, options, &self.limits),
            Backend::Native(plugin) => plugin.convert(files, source, target, options, &self.limits),
        }
    }

    /// Makes an example file of `format`, blocking.
    pub fn template(&self, format: &str) -> Result<Vec<u8>, PluginError> {
        match &self.backend {
            Backend::Wasm(plugin) => plugin.template(format, &self.limits),
            Backend::Native(plugin) => plugin.template(format, &self.limits),
        }
    }

    /// Time to make and drop one instance (WebAssembly only; for benchmarks).
    pub fn instantiate_once(&self) -> Option<Result<Duration, PluginError>> {
        match &self.backend {
            Backend::Wasm(plugin) => Some(plugin.instantiate_once()),
            Backend::Native(_) => None,
        }
    }
}

/// A plugin file that was not loaded, and why.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Refused {
    /// Where the file is (not shown to clients).
    #[serde(skip)]
    pub path: PathBuf,
    /// The file's name.
    pub file: String,
    /// Why.
    pub reason: String,
}

/// An immutable snapshot of the loaded plugins and their graph.
#[derive(Default)]
pub struct Catalog {
    /// Loaded plugins.
    pub plugins: Vec<Arc<LoadedPlugin>>,
    /// Refused plugin files.
    pub refused: Vec<Refused>,
    /// The capability graph (edges index `plugins`).
    pub graph: Graph,
}

impl Catalog {
    fn new(plugins: Vec<Arc<LoadedPlugin>>, refused: Vec<Refused>) -> Self {
        let edges = plugins.iter().enumerate().flat_map(|(index, plugin)| {
            plugin.described.pairs.iter().map(move |pair| Edge {
                plugin: index,
                plugin_name: plugin.name().to_owned(),
                source: pair.source.clone(),
                target: pair.target.clone(),
                cost: pair.cost,
            })
        });
        let graph = Graph::new(edges);
        Self {
            plugins,
            refused,
            graph,
        }
    }

    /// The plugin named `name`.
    pub fn plugin(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.iter().find(|plugin| plugin.name() == name)
    }

    /// Every format a plugin reads or writes, or the host knows, with its details.
    pub fn formats(&self) -> BTreeMap<String, FormatDetails> {
        let mut formats: BTreeMap<String, FormatDetails> = KNOWN_FORMATS
            .iter()
            .map(|known| {
                (
                    known.name.to_owned(),
                    FormatDetails {
                        name: known.name.to_owned(),
                        media_types: known
                            .media_types
                            .iter()
                            .map(|text| (*text).to_owned())
                            .collect(),
                        extensions: known
                            .extensions
                            .iter()
                            .map(|text| (*text).to_owned())
                            .collect(),
                        category: known.category.to_owned(),
                        description: known.description.to_owned(),
                    },
                )
            })
            .collect();
        for plugin in &self.plugins {
            for format in &plugin.described.info.formats {
                let Ok(name) = FormatName::parse(&format.name) else {
                    continue;
                };
                formats
                    .entry(name.to_string())
                    .or_insert_with(|| FormatDetails {
                        name: name.to_string(),
                        media_types: format.media_types.clone(),
                        extensions: format.extensions.clone(),
                        category: format.category.clone(),
                        description: format.description.clone(),
                    });
            }
            let pairs = plugin
                .described
                .pairs
                .iter()
                .flat_map(|pair| [&pair.source, &pair.target]);
            for name in pairs.chain(&plugin.described.templates) {
                formats
                    .entry(name.to_string())
                    .or_insert_with(|| FormatDetails {
                        name: name.to_string(),
                        media_types: vec!["application/octet-stream".into()],
                        extensions: vec![name.to_string()],
                        category: "other".into(),
                        description: String::new(),
                    });
            }
        }
        formats
    }

    /// The plugin that makes example files of `format`.
    pub fn template_maker(&self, format: &FormatName) -> Option<&Arc<LoadedPlugin>> {
        self.plugins
            .iter()
            .find(|plugin| plugin.described.templates.contains(format))
    }
}

/// What is known of a format.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct FormatDetails {
    /// Canonical name.
    pub name: String,
    /// Media types, preferred first.
    pub media_types: Vec<String>,
    /// Extensions, preferred first.
    pub extensions: Vec<String>,
    /// `image`, `audio`, `video`, `document`, `data`, `archive` or `other`.
    pub category: String,
    /// One line.
    pub description: String,
}

/// The files of one conversion step.
#[derive(Clone, Debug)]
pub struct TaskFiles {
    /// The input; alone in its folder (which a WebAssembly plugin sees as `/input`).
    pub input: PathBuf,
    /// Where the output goes.
    pub output: PathBuf,
}

/// One step of a planned conversion.
#[derive(Clone)]
pub struct Step {
    /// The plugin.
    pub plugin: Arc<LoadedPlugin>,
    /// Format read.
    pub source: FormatName,
    /// Format written.
    pub target: FormatName,
    /// Its options (already checked against its schema).
    pub options: Value,
}

/// A planned conversion.
#[derive(Clone)]
pub struct Plan {
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// What happened in one step, for progress reports.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// Step number, from 1.
    pub number: usize,
    /// Of how many.
    pub of: usize,
    /// The plugin.
    pub plugin: String,
    /// Format read.
    pub source: String,
    /// Format written.
    pub target: String,
    /// How long it took (`None` when it starts).
    pub elapsed: Option<Duration>,
}

/// Modification stamp of a plugin file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    modified: Option<SystemTime>,
}

/// The plugin runtime.
pub struct PluginRuntime {
    config: PluginsConfig,
    wasm: Arc<WasmEngine>,
    catalog: RwLock<Arc<Catalog>>,
    stamps: Mutex<HashMap<PathBuf, Stamp>>,
}

/// What a rescan changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Plugins loaded or reloaded.
    pub loaded: Vec<String>,
    /// Plugin files removed.
    pub removed: Vec<String>,
    /// Files refused.
    pub refused: Vec<String>,
}

fn is_plugin_file(path: &Path) -> Option<PluginKind> {
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("wasm") => Some(PluginKind::Wasm),
        Some("so" | "dylib" | "dll") => Some(PluginKind::Native),
        _ => None,
    }
}

fn limits_of(config: &PluginsConfig, name: &str) -> Limits {
    let TaskLimits {
        memory,
        time,
        output,
    } = config
        .plugin_limits
        .get(name)
        .copied()
        .unwrap_or(config.limits);
    Limits {
        memory,
        time,
        output,
    }
}

impl PluginRuntime {
    /// Starts the runtime and loads what the folders hold.
    pub fn start(config: &PluginsConfig) -> anyhow::Result<Arc<Self>> {
        let max_memory = config
            .plugin_limits
            .values()
            .map(|limits| limits.memory)
            .fold(config.limits.memory, u64::max);
        let wasm = WasmEngine::new(config.cache_dir.clone(), max_memory)?;
        std::fs::create_dir_all(&config.work_dir)?;
        let runtime = Arc::new(Self {
            config: config.clone(),
            wasm,
            catalog: RwLock::new(Arc::new(Catalog::default())),
            stamps: Mutex::new(HashMap::new()),
        });
        let started = Instant::now();
        let report = runtime.rescan();
        tracing::info!(
            loaded = report.loaded.len(),
            refused = report.refused.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            dirs = %config.dirs.iter().map(|dir| dir.display().to_string()).collect::<Vec<_>>().join(":"),
            "plugins loaded"
        );
        Ok(runtime)
    }

    /// The current catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .map(|catalog| catalog.clone())
            .unwrap_or_default()
    }

    /// Checks the folders and reloads what changed. Unchanged plugins are kept as they are.
    pub fn rescan(&self) -> ScanReport {
        let mut files: Vec<(PathBuf, PluginKind, Stamp)> = Vec::new();
        for dir in &self.config.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut in_dir: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter_map(|path| {
                    let kind = is_plugin_file(&path)?;
                    let metadata = std::fs::metadata(&path).ok()?;
                    metadata.is_file().then(|| {
                        (
                            path,
                            kind,
                            Stamp {
                                size: metadata.len(),
                                modified: metadata.modified().ok(),
                            },
                        )
                    })
                })
                .collect();
            in_dir.sort_by(|a, b| a.0.cmp(&b.0));
            files.extend(in_dir);
        }
        let Ok(mut stamps) = self.stamps.lock() else {
            return ScanReport::default();
        };
        let current = self.catalog();
        let unchanged = files.len() == stamps.len()
            && files
                .iter()
                .all(|(path, _, stamp)| stamps.get(path) == Some(stamp));
        if unchanged {
            return ScanReport::default();
        }
        let mut report = ScanReport::default();
        let mut plugins: Vec<Arc<LoadedPlugin>> = Vec::new();
        let mut refused: Vec<Refused> = Vec::new();
        let mut new_stamps = HashMap::new();
        for (path, kind, stamp) in files {
            new_stamps.insert(path.clone(), stamp);
            let keep = stamps.get(&path) == Some(&stamp);
            let existing = current.plugins.iter().find(|plugin| plugin.file == path);
            let loaded = match (keep, existing) {
                (true, Some(plugin)) => Ok(plugin.clone()),
                (true, None) => match current.refused.iter().find(|refusal| refusal.path == path) {
                    Some(refusal) => Err(refusal.reason.clone()),
                    None => self.load(&path, kind).map(Arc::new),
                },
                (false, _) => self.load(&path, kind).map(Arc::new),
            };
            let loaded = loaded.and_then(|plugin| {
                match plugins.iter().find(|other| other.name() == plugin.name()) {
                    Some(other) => Err(format!(
                        "a plugin named `{}` is already loaded from {}",
                        plugin.name(),
                        other
                            .file
                            .file_name()
                            .map(|name| name.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    )),
                    None => Ok(plugin),
                }
            });
            match loaded {
                Ok(plugin) => {
                    if !keep {
                        tracing::info!(plugin = plugin.name(), version = %plugin.described.info.version, file = %path.display(), kind = plugin.kind.as_str(), conversions = plugin.described.pairs.len(), "plugin loaded");
                        report.loaded.push(plugin.name().to_owned());
                    }
                    plugins.push(plugin);
                }
                Err(reason) => {
                    if !keep {
                        tracing::warn!(file = %path.display(), %reason, "plugin refused");
                        report.refused.push(path.display().to_string());
                    }
                    let file = path
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    refused.push(Refused {
                        path: path.clone(),
                        file,
                        reason,
                    });
                }
            }
        }
        for path in stamps.keys() {
            if !new_stamps.contains_key(path) {
                tracing::info!(file = %path.display(), "plugin removed");
                report.removed.push(path.display().to_string());
            }
        }
        *stamps = new_stamps;
        let catalog = Arc::new(Catalog::new(plugins, refused));
        if let Ok(mut slot) = self.catalog.write() {
            *slot = catalog;
        }
        report
    }

    /// Loads and checks one file.
    pub fn load(&self, path: &Path, kind: PluginKind) -> Result<LoadedPlugin, String> {
        let bytes = std::fs::read(path).map_err(|error| format!("cannot read it: {error}"))?;
        let sha256: String = Sha256::digest(&bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default();
        let provisional = limits_of(&self.config, stem);
        let (backend, info) = match kind {
            PluginKind::Wasm => {
                let (plugin, info) = self.wasm.load(&bytes, &provisional)?;
                (Backend::Wasm(plugin), info)
            }
            PluginKind::Native => {
                let workers = usize::try_from(self.config.native_workers).unwrap_or(2);
                let (plugin, info) = NativePlugin::load(path, &provisional, workers)?;
                (Backend::Native(plugin), info)
            }
        };
        let described = described::check(info)?;
        let limits = limits_of(&self.config, &described.info.name);
        Ok(LoadedPlugin {
            described,
            kind,
            file: path.to_path_buf(),
            sha256,
            limits,
            backend,
        })
    }

    /// Rescans every `reload_interval` until the process ends (hot reload).
    pub fn watch(self: &Arc<Self>) {
        let runtime = Arc::downgrade(self);
        let interval = self.config.reload_interval;
        let spawned = std::thread::Builder::new().name("plugin-watch".into()).spawn(move || {
            loop {
                std::thread::sleep(interval);
                let Some(runtime) = runtime.upgrade() else { return };
                let report = runtime.rescan();
                if report != ScanReport::default() {
                    tracing::info!(loaded = ?report.loaded, removed = ?report.removed, refused = ?report.refused, "plugins reloaded");
                }
            }
        });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot watch the plugin folders; plugins will not be reloaded");
        }
    }

    /// Plans `source` → `target` with `options` (a JSON object): the cheapest route, each
    /// option given to the step whose schema declares it, each step's options checked.
    /// The options of the route from `source` to `target` that take text only (see
    /// [`OptionsSchema::is_text`]); empty when there is no route.
    pub fn text_options(&self, source: &FormatName, target: &FormatName) -> BTreeSet<String> {
        let catalog = self.catalog();
        let Some(route) = catalog.graph.route(source, target) else {
            return BTreeSet::new();
        };
        route
            .iter()
            .filter_map(|edge| {
                catalog.plugins[edge.plugin]
                    .described
                    .pair(&edge.source, &edge.target)
            })
            .flat_map(|pair| {
                pair.schema
                    .properties()
                    .filter(|name| pair.schema.is_text(name))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub fn plan(
        &self,
        source: &FormatName,
        target: &FormatName,
        options: &Value,
    ) -> Result<Plan, PluginError> {
        let catalog = self.catalog();
        let route = catalog
            .graph
            .route(source, target)
            .ok_or_else(|| PluginError::NoRoute {
                source_format: source.to_string(),
                target: target.to_string(),
            })?;
        let options = match options {
            Value::Null => Map::new(),
            Value::Object(map) => map.clone(),
            _ => {
                return Err(PluginError::InvalidOptions(vec![FieldError {
                    path: String::new(),
                    message: "options are a JSON object".into(),
                }]));
            }
        };
        let schemas: Vec<Arc<OptionsSchema>> = route
            .iter()
            .map(|edge| {
                let plugin = &catalog.plugins[edge.plugin];
                plugin
                    .described
                    .pair(&edge.source, &edge.target)
                    .map(|pair| pair.schema.clone())
            })
            .collect::<Option<_>>()
            .ok_or_else(|| {
                PluginError::Internal("the graph names a pair its plugin lacks".into())
            })?;
        let mut errors = Vec::new();
        let mut claimed = BTreeSet::new();
        let mut steps = Vec::with_capacity(route.len());
        let last = route.len() - 1;
        for (index, (edge, schema)) in route.iter().zip(&schemas).enumerate() {
            let declared: BTreeSet<&str> = schema.properties().collect();
            let mut mine = Map::new();
            for (key, value) in &options {
                // A single step takes every option (its schema decides); in a chain, each
                // option goes to the steps that declare it, or to the last one.
                let belongs = route.len() == 1
                    || declared.contains(key.as_str())
                    || (index == last && !claimed.contains(key));
                if belongs {
                    mine.insert(key.clone(), value.clone());
                    claimed.insert(key.clone());
                }
            }
            let value = Value::Object(mine);
            for error in schema.validator.iter_errors(&value) {
                if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
                    error.kind()
                {
                    // Name each unknown option and the ones the route has.
                    let known: BTreeSet<&str> = schemas
                        .iter()
                        .flat_map(|schema| schema.properties())
                        .collect();
                    let known = if known.is_empty() {
                        "this conversion takes no options".to_owned()
                    } else {
                        format!(
                            "the options of {source} → {target} are {}",
                            known.into_iter().collect::<Vec<_>>().join(", ")
                        )
                    };
                    for option in unexpected {
                        errors.push(FieldError {
                            path: format!("/{option}"),
                            message: format!("is not an option here; {known}"),
                        });
                    }
                    continue;
                }
                errors.push(FieldError {
                    path: error.instance_path().to_string(),
                    message: error.to_string(),
                });
            }
            steps.push(Step {
                plugin: catalog.plugins[edge.plugin].clone(),
                source: edge.source.clone(),
                target: edge.target.clone(),
                options: value,
            });
        }
        if !errors.is_empty() {
            return Err(PluginError::InvalidOptions(errors));
        }
        Ok(Plan { steps })
    }

    /// Runs a plan on `input`, writing `output`; calls `progress` as steps start and end.
    /// Blocking: call it off the async threads.
    pub fn run(
        &self,
        plan: &Plan,
        input: &Path,
        output: &Path,
        progress: &dyn Fn(&StepReport),
    ) -> Result<(), PluginError> {
        let task_dir = self.config.work_dir.join(uuid::Uuid::now_v7().to_string());
        let result = self.run_in(plan, input, output, &task_dir, progress);
        if let Err(error) = std::fs::remove_dir_all(&task_dir) {
            tracing::warn!(dir = %task_dir.display(), %error, "cannot remove a task folder");
        }
        result
    }

    fn run_in(
        &self,
        plan: &Plan,
        input: &Path,
        output: &Path,
        task_dir: &Path,
        progress: &dyn Fn(&StepReport),
    ) -> Result<(), PluginError> {
        let io =
            |what: &str, error: std::io::Error| PluginError::Internal(format!("{what}: {error}"));
        let mut current = input.to_path_buf();
        for (index, step) in plan.steps.iter().enumerate() {
            let step_dir = task_dir.join(format!("step-{}", index + 1));
            std::fs::create_dir_all(&step_dir)
                .map_err(|error| io("cannot create a task folder", error))?;
            // The input must be alone in its folder: that folder is all a plugin sees.
            let step_input = step_dir.join(format!("input.{}", step.source));
            if index == 0 {
                if std::fs::hard_link(&current, &step_input).is_err() {
                    std::fs::copy(&current, &step_input)
                        .map_err(|error| io("cannot stage the input", error))?;
                }
            } else {
                std::fs::rename(&current, &step_input)
                    .map_err(|error| io("cannot pass a step's output on", error))?;
            }
            let step_output = task_dir.join(format!("step-{}.{}", index + 1, step.target));
            let mut report = StepReport {
                number: index + 1,
                of: plan.steps.len(),
                plugin: step.plugin.name().to_owned(),
                source: step.source.to_string(),
                target: step.target.to_string(),
                elapsed: None,
            };
            progress(&report);
            let started = Instant::now();
            let files = TaskFiles {
                input: step_input,
                output: step_output.clone(),
            };
            step.plugin.convert(
                &files,
                step.source.as_str(),
                step.target.as_str(),
                &step.options.to_string(),
            )?;
            report.elapsed = Some(started.elapsed());
            progress(&report);
            current = step_output;
        }
        if std::fs::rename(&current, output).is_err() {
            std::fs::copy(&current, output)
                .map_err(|error| io("cannot write the output", error))?;
        }
        Ok(())
    }
}
