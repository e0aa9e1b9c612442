//! `metamorph plugin-worker`: the process a native plugin runs in.
//!
//! It limits itself (data segment, file size, no core dumps), loads one library, checks its
//! ABI version, then answers one JSON request per line on standard input until it closes.
//! This is the only module of the host that calls native code.
#![allow(
    unsafe_code,
    reason = "loading and calling native plugin libraries over their C ABI"
)]

use std::ffi::CString;
use std::io::{BufRead, Write};
use std::path::Path;

use base64::Engine;
use metamorph_plugin_api::native::{
    ABI_VERSION, Buffer, ENTRY_SYMBOL, PluginV1, Request, STATUS_ERROR, STATUS_OK,
};
use metamorph_plugin_api::{ConvertError, PluginInfo};

use super::native::{WorkerRequest, WorkerResponse};

/// Runs the worker until its input closes.
pub fn run(library: &Path, memory: u64, output: u64) -> anyhow::Result<()> {
    limit_self(memory, output)?;
    keep_heap();
    // SAFETY: loading a library runs its initialisers. The library is a plugin the
    // operator installed in a plugins folder, and it runs in this worker process only.
    let library = unsafe { libloading::Library::new(library) }?;
    // SAFETY: every native plugin exports ENTRY_SYMBOL with exactly this signature
    // (`metamorph_plugin_api::native`); a library without it fails here.
    let entry = unsafe { library.get::<extern "C" fn() -> *const PluginV1>(ENTRY_SYMBOL) }
        .map_err(|error| {
            anyhow::anyhow!("the library exports no `metamorph_native_plugin_v1`: {error}")
        })?;
    let table = entry();
    anyhow::ensure!(
        !table.is_null(),
        "the plugin's entry returned no function table"
    );
    // SAFETY: checked non-null; the table is a static of the library, which stays loaded
    // until this process exits.
    let table: &PluginV1 = unsafe { &*table };
    anyhow::ensure!(
        table.abi_version == ABI_VERSION,
        "the plugin speaks ABI version {}, this host speaks {ABI_VERSION}",
        table.abi_version
    );
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        let response = match serde_json::from_str::<WorkerRequest>(&line) {
            Ok(request) => handle(table, request),
            Err(error) => WorkerResponse::Panic {
                message: format!("bad request: {error}"),
            },
        };
        writeln!(stdout, "{}", serde_json::to_string(&response)?)?;
        stdout.flush()?;
    }
    Ok(())
}

fn handle(table: &PluginV1, request: WorkerRequest) -> WorkerResponse {
    match request {
        WorkerRequest::Describe => {
            let mut out = Buffer::empty();
            // SAFETY: `out` is a valid buffer; the library fills it.
            let status = unsafe { (table.describe)(&mut out) };
            let bytes = take(table, out);
            match status {
                STATUS_OK => match serde_json::from_slice::<PluginInfo>(&bytes) {
                    Ok(info) => WorkerResponse::Ok {
                        info: Some(info),
                        bytes: None,
                    },
                    Err(error) => WorkerResponse::Panic {
                        message: format!("the description is not valid JSON: {error}"),
                    },
                },
                _ => failure(status, &bytes),
            }
        }
        WorkerRequest::Convert {
            input,
            output,
            source,
            target,
            options,
        } => {
            let strings = [
                input.to_string_lossy().into_owned(),
                output.to_string_lossy().into_owned(),
                source,
                target,
                options,
            ]
            .map(|text| CString::new(text).unwrap_or_default());
            let request = Request {
                input_path: strings[0].as_ptr(),
                output_path: strings[1].as_ptr(),
                source: strings[2].as_ptr(),
                target: strings[3].as_ptr(),
                options_json: strings[4].as_ptr(),
            };
            let mut error = Buffer::empty();
            // SAFETY: the request's strings live until after the call; `error` is valid.
            let status = unsafe { (table.convert)(&request, &mut error) };
            let bytes = take(table, error);
            match status {
                STATUS_OK => WorkerResponse::Ok {
                    info: None,
                    bytes: None,
                },
                _ => failure(status, &bytes),
            }
        }
        WorkerRequest::Template { format } => {
            let format = CString::new(format).unwrap_or_default();
            let mut out = Buffer::empty();
            // SAFETY: `format` lives until after the call; `out` is valid.
            let status = unsafe { (table.template)(format.as_ptr(), &mut out) };
            let bytes = take(table, out);
            match status {
                STATUS_OK => WorkerResponse::Ok {
                    info: None,
                    bytes: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                },
                _ => failure(status, &bytes),
            }
        }
    }
}

/// Copies a library buffer and frees it with the library's own `free`.
fn take(table: &PluginV1, buffer: Buffer) -> Vec<u8> {
    if buffer.ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: the library returned this buffer with `len` initialised bytes at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(buffer.ptr, buffer.len) }.to_vec();
    // SAFETY: the buffer came from this library and is freed exactly once.
    unsafe { (table.free)(buffer) };
    bytes
}

fn failure(status: i32, bytes: &[u8]) -> WorkerResponse {
    if status == STATUS_ERROR
        && let Ok(error) = serde_json::from_slice::<ConvertError>(bytes)
    {
        return WorkerResponse::Error { error };
    }
    WorkerResponse::Panic {
        message: String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Caps this process: anonymous memory (data segment), file size (past it the kernel sends
/// SIGXFSZ, which the host reports as the output limit), and no core dumps.
fn limit_self(memory: u64, output: u64) -> anyhow::Result<()> {
    use rlimit::Resource;
    Resource::DATA.set(memory, memory)?;
    Resource::FSIZE.set(output, output)?;
    Resource::CORE.set(0, 0)?;
    Ok(())
}

/// Has glibc's malloc serve buffers up to 32 MiB from its heap and keep up to 64 MiB of it
/// free between conversions. A worker converts one file after another with buffers of
/// similar sizes (frames, decoded images). With glibc's defaults, such a buffer gets fresh
/// pages from `mmap` until a larger one has been freed (its threshold adapts) and, after a
/// trim, again: the page faults took about a quarter of a 2-megapixel JPEG → PNG conversion,
/// and the same conversion ran in 21 or 25 ms depending on what the worker had done before.
fn keep_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets malloc's tunables; it is called before any other thread
    // exists in this process and before the plugin library is loaded.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}
