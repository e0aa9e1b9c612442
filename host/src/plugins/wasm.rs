//! WebAssembly plugins: components run by wasmtime, each task in a fresh instance.
//!
//! The sandbox of a task: no environment, no arguments, no network, no clock beyond
//! WASI's, and one preopened folder, `/input`, read-only, holding the input file. The
//! output goes to a host stream that counts bytes and fails past the output limit. Memory
//! is capped by a limiter that records when it refused to grow, wall time by epoch
//! interruption (a ticker advances the engine's epoch every [`TICK`]).
//!
//! Components are compiled once and cached as precompiled artifacts on disk, named by the
//! component's SHA-256 and the engine's compatibility hash (wasmtime version and config),
//! so a restart loads each in well under a millisecond. Each task instantiates its component
//! from a pool, and a finished task's instance goes back to the pool on a thread of its own
//! (`WasmEngine::release`), which then makes the plugin's next instance ahead of its next
//! task (`WasmPlugin::call`).

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, Resource, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, ResourceLimiter,
    Store, Trap,
};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::limits::Limits;
use super::{PluginError, TaskFiles};
use metamorph_plugin_api::{Conversion, ConvertError, FormatInfo, PluginInfo};

wasmtime::component::bindgen!({
    path: "../plugin-api/wit",
    world: "converter-plugin",
    with: { "wasi": wasmtime_wasi::p2::bindings::sync },
    require_store_data_send: true,
});

use self::metamorph::plugin::types as wit;

/// How often the engine's epoch advances: the granularity of time limits.
pub const TICK: Duration = Duration::from_millis(10);

/// Bumped whenever a patch under `vendor/` changes the machine code wasmtime generates
/// (`vendor/wasmtime-internal-cranelift`): artifacts cached by an earlier build are then
/// compiled again instead of being loaded. wasmtime's own compatibility hash only covers its
/// version and configuration.
const CODE_GENERATOR_REVISION: u32 = 1;

/// Bytes of each pooled memory kept mapped between tasks (see `linear_memory_keep_resident`).
const KEEP_RESIDENT: usize = 64 << 20;
/// Most WebAssembly instances alive at once (the pooling allocator's size).
const MAX_INSTANCES: u32 = 64;
/// Finished tasks' stores waiting to be released on the releasing thread; when it is this
/// far behind, a task releases its own store.
const RELEASE_QUEUE: usize = 4;
/// Time an instance made ahead of its task may take to instantiate (start functions run).
const READY_TIME: Duration = Duration::from_secs(1);
/// Most instances made ahead at once, one per plugin at most: the rest of the pool is left
/// to tasks, however many plugins have run.
const MAX_READY: usize = MAX_INSTANCES as usize / 4;

/// What a task's store holds.
struct TaskState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
}

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and table growth; remembers whether it had to refuse, so a trap
/// that follows (a Rust guest aborts on a failed allocation) is reported as the memory
/// limit it is.
struct MemoryLimiter {
    max_memory: usize,
    refused: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_memory;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= 1_000_000;
        self.refused |= !allowed;
        Ok(allowed)
    }
}

/// The shared engine: one per process, with its epoch ticker and artifact cache.
pub struct WasmEngine {
    engine: Engine,
    linker: Linker<TaskState>,
    cache_dir: PathBuf,
    max_memory: usize,
    /// Where finished tasks hand their stores to be released (see [`WasmPlugin::call`]).
    release: SyncSender<Release>,
}

impl WasmEngine {
    /// Builds the engine: Cranelift optimising for speed, SIMD on, the pooling allocator
    /// sized for `max_memory` per instance, epoch interruption with a ticker thread. The
    /// patched code generator under `vendor/` makes every epoch check trap in place at the
    /// deadline set before each call, rather than call into the runtime (which made loops
    /// spill their registers).
    pub fn new(cache_dir: PathBuf, max_memory: u64) -> anyhow::Result<Arc<Self>> {
        let max_memory = usize::try_from(max_memory).unwrap_or(usize::MAX);
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(MAX_INSTANCES)
            .total_core_instances(MAX_INSTANCES * 4)
            .total_memories(MAX_INSTANCES * 2)
            .total_tables(MAX_INSTANCES * 4)
            .max_memories_per_component(2)
            .max_memory_size(max_memory)
            // A slot's memory is wiped with memset rather than returned to the kernel, up to
            // this size: the next task then does not fault every page in again.
            .linear_memory_keep_resident(KEEP_RESIDENT);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed)
            .wasm_simd(true)
            .wasm_relaxed_simd(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        // `METAMORPH_WASM_PROFILER=perfmap` names the compiled plugin functions for `perf`
        // (`/tmp/perf-<pid>.map`), to see where a plugin spends its time.
        if std::env::var("METAMORPH_WASM_PROFILER").as_deref() == Ok("perfmap") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)
            .map_err(|error| anyhow::anyhow!("cannot create the wasm engine: {error}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|error| anyhow::anyhow!("cannot link WASI: {error}"))?;
        std::fs::create_dir_all(&cache_dir)?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })?;
        let (release, released) = std::sync::mpsc::sync_channel::<Release>(RELEASE_QUEUE);
        let ready_count = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("wasm-release".into())
            .spawn(move || {
                for Release { store, next } in released {
                    let engine = store.engine().clone();
                    drop(store);
                    if let Some(next) = next {
                        next.make(&engine, max_memory, &ready_count);
                    }
                }
            })?;
        Ok(Arc::new(Self {
            engine,
            linker,
            cache_dir,
            max_memory,
            release,
        }))
    }

    /// Releases a finished task's store, its instance and its memory slot, off the task's
    /// path: the pooling allocator wipes the slot's memory when the instance is released
    /// (a `memset` of every page the task used), which the task's caller need not wait
    /// for. Then, given `next`, the releasing thread makes that plugin's next instance. When
    /// the releasing thread is behind, the store is released right here and no instance is
    /// made ahead, so no more than [`RELEASE_QUEUE`] slots wait.
    fn release(&self, store: Store<TaskState>, next: Option<NextInstance>) {
        if let Err(TrySendError::Full(release) | TrySendError::Disconnected(release)) =
            self.release.try_send(Release { store, next })
        {
            drop(release);
        }
    }

    /// The artifact cache key of a component: its content, this engine's config and the
    /// revision of the patched code generator.
    fn artifact_path(&self, wasm: &[u8]) -> PathBuf {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        CODE_GENERATOR_REVISION.hash(&mut engine_hash);
        let digest = Sha256::digest(wasm);
        let content: String = digest
            .iter()
            .take(16)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        self.cache_dir
            .join(format!("{content}-{:016x}.cwasm", engine_hash.finish()))
    }

    /// Loads a component from the cache, or compiles it and caches the artifact.
    /// Returns the component and whether it came from the cache.
    fn component(&self, wasm: &[u8]) -> Result<(Component, bool), String> {
        let artifact = self.artifact_path(wasm);
        if artifact.is_file() {
            // SAFETY: the artifact was written by `precompile_component` of an engine with
            // this very compatibility hash (it is in the file name), into the service's
            // own cache folder; a mismatched or damaged file is refused by wasmtime's
            // header checks and recompiled below.
            #[allow(unsafe_code, reason = "loading our own precompiled artifact")]
            let loaded = unsafe { Component::deserialize_file(&self.engine, &artifact) };
            match loaded {
                Ok(component) => return Ok((component, true)),
                Err(error) => {
                    tracing::warn!(artifact = %artifact.display(), %error, "cached artifact refused; recompiling");
                }
            }
        }
        let compiled = self
            .engine
            .precompile_component(wasm)
            .map_err(|error| format!("not a valid component: {error}"))?;
        let temporary = artifact.with_extension(format!("tmp{}", std::process::id()));
        let written = File::create(&temporary)
            .and_then(|mut file| file.write_all(&compiled).and_then(|()| file.sync_all()))
            .and_then(|()| std::fs::rename(&temporary, &artifact));
        if let Err(error) = written {
            tracing::warn!(%error, "cannot cache a compiled plugin; it will be compiled again next start");
        }
        // SAFETY: the bytes were produced by `precompile_component` of this engine a moment ago.
        #[allow(unsafe_code, reason = "loading bytes this engine just compiled")]
        let component = unsafe { Component::deserialize(&self.engine, &compiled) }
            .map_err(|error| format!("cannot load the compiled component: {error}"))?;
        Ok((component, false))
    }

    /// Compiles (or loads) a component, checks it exports the converter world, and asks it
    /// to describe itself within `limits`.
    pub fn load(
        self: &Arc<Self>,
        wasm: &[u8],
        limits: &Limits,
    ) -> Result<(WasmPlugin, PluginInfo), String> {
        let started = Instant::now();
        let (component, cached) = self.component(wasm)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|error| format!("it does not fit the plugin contract: {error:#}"))?;
        let pre = ConverterPluginPre::new(pre).map_err(|error| {
            format!("it does not export `metamorph:plugin/converter@0.1.0`: {error:#}")
        })?;
        let plugin = WasmPlugin {
            engine: self.clone(),
            pre,
            ready: Arc::new(Mutex::new(None)),
        };
        let describe_limits = Limits {
            time: limits.time.min(Duration::from_secs(10)),
            ..limits.clone()
        };
        // Only a plugin that converts gets an instance made ahead, not every plugin loaded.
        let info = plugin
            .call(&describe_limits, None, false, |bindings, store| {
                bindings.metamorph_plugin_converter().call_describe(store)
            })
            .map_err(|error| format!("`describe` failed: {error}"))?;
        tracing::debug!(cached, elapsed = ?started.elapsed(), "loaded a wasm component");
        Ok((plugin, from_wit(info)))
    }
}

/// A loaded component, pre-linked so that a task only instantiates it.
pub struct WasmPlugin {
    engine: Arc<WasmEngine>,
    pre: ConverterPluginPre<TaskState>,
    /// An instance made on the releasing thread after a task, for the next task: it has run
    /// nothing but its start functions, with no folder, input or output. Instantiating it,
    /// and the pooling allocator's taking back the memory the last task in its slot grew
    /// (an `mprotect` over those pages), are then off the next task's path.
    ready: Arc<Mutex<Option<Ready>>>,
}

/// An instance made ahead of its task.
struct Ready {
    store: Store<TaskState>,
    bindings: ConverterPlugin,
    /// Counts it among the [`MAX_READY`] until it is taken or dropped.
    _counted: ReadyCount,
}

/// One of the instances made ahead, counted while it lives.
struct ReadyCount(Arc<AtomicUsize>);

impl ReadyCount {
    /// Counts one more, unless [`MAX_READY`] are already made.
    fn take(count: &Arc<AtomicUsize>) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |made| {
                (made < MAX_READY).then_some(made + 1)
            })
            .ok()
            .map(|_| Self(count.clone()))
    }
}

impl Drop for ReadyCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A store for the releasing thread, and the plugin whose next instance it makes after.
struct Release {
    store: Store<TaskState>,
    next: Option<NextInstance>,
}

/// What the releasing thread needs to make a plugin's next instance: it holds the plugin's
/// slot weakly, so a plugin removed meanwhile gets none.
struct NextInstance {
    pre: ConverterPluginPre<TaskState>,
    ready: Weak<Mutex<Option<Ready>>>,
}

impl NextInstance {
    /// Instantiates the plugin into its empty slot, with no folder and the engine's memory
    /// limit; a task sets its own before it calls anything. A failure, or [`MAX_READY`]
    /// instances made already, leaves the slot empty, and the next task instantiates (and
    /// reports any failure) itself.
    fn make(self, engine: &Engine, max_memory: usize, count: &Arc<AtomicUsize>) {
        let Some(ready) = self.ready.upgrade() else {
            return;
        };
        if ready.lock().map_or(true, |slot| slot.is_some()) {
            return;
        }
        let Some(counted) = ReadyCount::take(count) else {
            return;
        };
        let Ok(state) = TaskState::new(None, max_memory) else {
            return;
        };
        let mut store = task_store(engine, state);
        store.set_epoch_deadline(ticks(READY_TIME));
        if let Ok(bindings) = self.pre.instantiate(&mut store)
            && let Ok(mut slot) = ready.lock()
            && slot.is_none()
        {
            *slot = Some(Ready {
                store,
                bindings,
                _counted: counted,
            });
        }
    }
}

impl TaskState {
    /// A task's state: WASI with `input_dir` preopened read-only as `/input` when given, an
    /// empty resource table, and a memory limiter at `max_memory`.
    fn new(input_dir: Option<&Path>, max_memory: usize) -> Result<Self, PluginError> {
        let mut wasi = WasiCtxBuilder::new();
        // Tasks run on threads that may block (`spawn_blocking`, the CLI), so the plugin's
        // file reads happen right here instead of being handed to Tokio's blocking pool and
        // waited for, a round trip of tens of microseconds per read.
        wasi.allow_blocking_current_thread(true);
        if let Some(dir) = input_dir {
            wasi.preopened_dir(dir, "/input", FsPerms::ReadOnly)
                .map_err(|error| {
                    PluginError::Internal(format!("cannot open the task folder: {error}"))
                })?;
        }
        Ok(Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                max_memory,
                refused: false,
            },
        })
    }
}

/// A store for one task (or one instance made ahead), its memory limited by its state's
/// limiter.
fn task_store(engine: &Engine, state: TaskState) -> Store<TaskState> {
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store
}

/// Epoch ticks for a time limit (at least one).
fn ticks(time: Duration) -> u64 {
    u64::try_from((time.as_millis() / TICK.as_millis()).max(1)).unwrap_or(u64::MAX)
}

impl WasmPlugin {
    /// Runs `call` in a fresh instance with `limits`; `input_dir` is preopened read-only
    /// as `/input` when given.
    ///
    /// The task takes the instance made ahead after the last task when there is one (see
    /// [`WasmPlugin::ready`]) and gives it its state, or instantiates its own; `ahead`
    /// false always instantiates, and makes none for the next task.
    fn call<T>(
        &self,
        limits: &Limits,
        input_dir: Option<&Path>,
        ahead: bool,
        call: impl FnOnce(&ConverterPlugin, &mut Store<TaskState>) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        let max_memory = usize::try_from(limits.memory)
            .unwrap_or(usize::MAX)
            .min(self.engine.max_memory);
        let state = TaskState::new(input_dir, max_memory)?;
        let ready = if ahead {
            self.ready.lock().ok().and_then(|mut slot| slot.take())
        } else {
            None
        };
        let (mut store, bindings) = match ready {
            Some(Ready {
                mut store,
                bindings,
                _counted: counted,
            }) => {
                drop(counted);
                *store.data_mut() = state;
                store.set_epoch_deadline(ticks(limits.time));
                (store, Ok(bindings))
            }
            None => {
                let mut store = task_store(&self.engine.engine, state);
                store.set_epoch_deadline(ticks(limits.time));
                let bindings = self.pre.instantiate(&mut store);
                (store, bindings)
            }
        };
        let outcome = bindings.and_then(|bindings| call(&bindings, &mut store));
        let refused = store.data().limiter.refused;
        let next = ahead.then(|| NextInstance {
            pre: self.pre.clone(),
            ready: Arc::downgrade(&self.ready),
        });
        self.engine.release(store, next);
        outcome.map_err(|error| {
            if refused {
                return PluginError::LimitExceeded(format!(
                    "the conversion needed more memory than its limit of {}",
                    bytesize::ByteSize(limits.memory)
                ));
            }
            match error.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => PluginError::TimedOut(limits.time),
                Some(trap) => PluginError::Crashed(format!("the plugin trapped: {trap}")),
                None => PluginError::Crashed(format!("the plugin failed: {error:#}")),
            }
        })
    }

    /// Converts `files.input` to `files.output` within `limits`.
    pub fn convert(
        &self,
        files: &TaskFiles,
        source: &str,
        target: &str,
        options: &str,
        limits: &Limits,
    ) -> Result<(), PluginError> {
        let input_dir = files
            .input
            .parent()
            .ok_or_else(|| PluginError::Internal("the input has no folder".into()))?;
        let input_name = files
            .input
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("input");
        let input_size = std::fs::metadata(&files.input)
            .map_err(|error| PluginError::Internal(format!("cannot read the input: {error}")))?
            .len();
        let file = File::create(&files.output)
            .map_err(|error| PluginError::Internal(format!("cannot create the output: {error}")))?;
        let exceeded = Arc::new(AtomicBool::new(false));
        let stream = CappedFile {
            file: std::io::BufWriter::with_capacity(256 * 1024, file),
            written: 0,
            cap: limits.output,
            exceeded: exceeded.clone(),
        };
        let request = wit::ConvertRequest {
            input_path: format!("/input/{input_name}"),
            input_size,
            source: source.to_owned(),
            target: target.to_owned(),
            options: options.to_owned(),
        };
        let result = self.call(limits, Some(input_dir), true, |bindings, store| {
            let output: Resource<Box<dyn OutputStream>> = store
                .data_mut()
                .table
                .push(Box::new(stream) as Box<dyn OutputStream>)?;
            let borrowed = Resource::new_borrow(output.rep());
            let result = bindings.metamorph_plugin_converter().call_convert(
                &mut *store,
                &request,
                borrowed,
            )?;
            // Dropping the stream flushes the file.
            drop(store.data_mut().table.delete(output)?);
            Ok(result)
        });
        if exceeded.load(Ordering::Relaxed) {
            return Err(PluginError::LimitExceeded(format!(
                "the output is larger than its limit of {}",
                bytesize::ByteSize(limits.output)
            )));
        }
        result?.map_err(|error| PluginError::Rejected(from_wit_error(error)))
    }

    /// Makes an example file of `format`.
    pub fn template(&self, format: &str, limits: &Limits) -> Result<Vec<u8>, PluginError> {
        let format = format.to_owned();
        self.call(limits, None, true, |bindings, store| {
            bindings
                .metamorph_plugin_converter()
                .call_template(store, &format)
        })?
        .map_err(|error| PluginError::Rejected(from_wit_error(error)))
    }

    /// Time to instantiate and drop one instance (for benchmarks).
    pub fn instantiate_once(&self) -> Result<Duration, PluginError> {
        let started = Instant::now();
        self.call(&Limits::default(), None, false, |_, _| Ok(()))?;
        Ok(started.elapsed())
    }
}

/// The output stream a task writes: a file, capped.
struct CappedFile {
    file: std::io::BufWriter<File>,
    written: u64,
    cap: u64,
    exceeded: Arc<AtomicBool>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedFile {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedFile {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let length = bytes.len() as u64;
        if self.written + length > self.cap {
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(StreamError::LastOperationFailed(wasmtime::Error::msg(
                "output size limit exceeded",
            )));
        }
        self.written += length;
        self.file
            .write_all(&bytes)
            .map_err(|error| StreamError::LastOperationFailed(wasmtime::Error::from(error)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.file
            .flush()
            .map_err(|error| StreamError::LastOperationFailed(wasmtime::Error::from(error)))
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

fn from_wit(info: wit::PluginInfo) -> PluginInfo {
    PluginInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        conversions: info
            .conversions
            .into_iter()
            .map(|conversion| Conversion {
                source: conversion.source,
                target: conversion.target,
                cost: conversion.cost,
                options_schema: conversion.options_schema,
            })
            .collect(),
        options_schema: info.options_schema,
        formats: info
            .formats
            .into_iter()
            .map(|format| FormatInfo {
                name: format.name,
                media_types: format.media_types,
                extensions: format.extensions,
                category: format.category,
                description: format.description,
            })
            .collect(),
        templates: info.templates,
        capabilities: info.capabilities,
    }
}

fn from_wit_error(error: wit::ConvertError) -> ConvertError {
    match error {
        wit::ConvertError::Unsupported(message) => ConvertError::unsupported(message),
        wit::ConvertError::InvalidOptions(message) => ConvertError::invalid_options(message),
        wit::ConvertError::MalformedInput(message) => ConvertError::malformed(message),
        wit::ConvertError::LimitExceeded(message) => ConvertError::limit(message),
        wit::ConvertError::Internal(message) => ConvertError::internal(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_more_than_a_quarter_of_the_pool_is_made_ahead() {
        let count = Arc::new(AtomicUsize::new(0));
        let mut made: Vec<ReadyCount> = (0..MAX_READY)
            .map(|_| ReadyCount::take(&count).expect("room for one more"))
            .collect();
        assert_eq!(count.load(Ordering::Acquire), MAX_READY);
        assert!(ReadyCount::take(&count).is_none(), "one past the limit");
        made.pop();
        assert!(
            ReadyCount::take(&count).is_some(),
            "a taken one frees its place"
        );
        drop(made);
        assert_eq!(count.load(Ordering::Acquire), 0);
    }
}
