//! The C ABI of native plugins: for engines that cannot run in WebAssembly (FFmpeg).
//!
//! A native plugin is a shared library exporting one symbol, [`ENTRY_SYMBOL`], a function
//! returning a pointer to a static [`PluginV1`] table. The host checks `abi_version`, then
//! calls through the table from a worker process of its own, so a crash in the library
//! ends that worker only. Conversions go between file paths. Every string is UTF-8 and
//! NUL-terminated; every [`Buffer`] the library returns is freed by its `free`.
//!
//! Plugin authors do not write any of this by hand: implement [`crate::Converter`] and
//! call [`crate::export_native_plugin!`] (feature `native`).

use std::ffi::c_char;

/// Version of [`PluginV1`]; the entry symbol's name carries it too.
pub const ABI_VERSION: u32 = 1;

/// The symbol every native plugin exports: `extern "C" fn() -> *const PluginV1`.
pub const ENTRY_SYMBOL: &[u8] = b"metamorph_native_plugin_v1\0";

/// Calls succeeded.
pub const STATUS_OK: i32 = 0;
/// The call failed; the buffer holds a JSON [`crate::ConvertError`].
pub const STATUS_ERROR: i32 = 1;
/// The plugin panicked; the buffer holds the message.
pub const STATUS_PANIC: i32 = 2;

/// Bytes owned by the library, handed to the host; freed by [`PluginV1::free`].
#[repr(C)]
#[derive(Debug)]
pub struct Buffer {
    /// Start of the bytes (null when empty).
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Allocated capacity (for freeing).
    pub cap: usize,
}

impl Buffer {
    /// An empty buffer.
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }
}

/// One conversion, between files.
#[repr(C)]
#[derive(Debug)]
pub struct Request {
    /// The input file.
    pub input_path: *const c_char,
    /// The file to write.
    pub output_path: *const c_char,
    /// The input's format.
    pub source: *const c_char,
    /// The format to write.
    pub target: *const c_char,
    /// Options as a JSON object.
    pub options_json: *const c_char,
}

/// The function table of a native plugin. Its layout is frozen while `abi_version` is 1.
#[repr(C)]
pub struct PluginV1 {
    /// Must equal [`ABI_VERSION`].
    pub abi_version: u32,
    /// Writes the JSON of [`crate::PluginInfo`] into `out`.
    pub describe: unsafe extern "C" fn(out: *mut Buffer) -> i32,
    /// Converts; on failure writes a JSON [`crate::ConvertError`] into `error`.
    pub convert: unsafe extern "C" fn(request: *const Request, error: *mut Buffer) -> i32,
    /// Writes an example file of `format` into `out`, or an error.
    pub template: unsafe extern "C" fn(format: *const c_char, out: *mut Buffer) -> i32,
    /// Frees a buffer this library returned.
    pub free: unsafe extern "C" fn(buffer: Buffer),
}

#[cfg(feature = "native")]
pub mod export {
    //! The library side of the ABI, instantiated for a [`Converter`] by
    //! [`crate::export_native_plugin!`].
    #![allow(
        unsafe_code,
        reason = "this is the C ABI; each block says why it is sound"
    )]

    use std::ffi::{CStr, c_char};
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::{Buffer, Request, STATUS_ERROR, STATUS_OK, STATUS_PANIC};
    use crate::error::ConvertError;
    use crate::sdk::{Converter, Input, Output};

    fn into_buffer(bytes: Vec<u8>) -> Buffer {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        Buffer {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }

    /// Runs `work`, turning a panic into [`STATUS_PANIC`] and an error into
    /// [`STATUS_ERROR`]; writes what it produced into `out`.
    fn guarded(out: *mut Buffer, work: impl FnOnce() -> Result<Vec<u8>, ConvertError>) -> i32 {
        let (status, bytes) = match catch_unwind(AssertUnwindSafe(work)) {
            Ok(Ok(bytes)) => (STATUS_OK, bytes),
            Ok(Err(error)) => (STATUS_ERROR, serde_json::to_vec(&error).unwrap_or_default()),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "the plugin panicked".to_owned());
                (STATUS_PANIC, message.into_bytes())
            }
        };
        if !out.is_null() {
            // SAFETY: the host passes a valid, writable `Buffer` it owns (checked non-null).
            unsafe { out.write(into_buffer(bytes)) };
        }
        status
    }

    fn text(pointer: *const c_char, what: &str) -> Result<String, ConvertError> {
        if pointer.is_null() {
            return Err(ConvertError::internal(format!("the host passed no {what}")));
        }
        // SAFETY: the host passes NUL-terminated strings that live for the whole call.
        let text = unsafe { CStr::from_ptr(pointer) };
        text.to_str()
            .map(str::to_owned)
            .map_err(|_not_utf8| ConvertError::internal(format!("the {what} is not UTF-8")))
    }

    /// `PluginV1::describe` of `C`.
    ///
    /// # Safety
    /// `out` must be null or point to a writable `Buffer`.
    pub unsafe extern "C" fn describe<C: Converter>(out: *mut Buffer) -> i32 {
        guarded(out, || {
            serde_json::to_vec(&C::describe())
                .map_err(|error| ConvertError::internal(error.to_string()))
        })
    }

    /// `PluginV1::convert` of `C`.
    ///
    /// # Safety
    /// `request` must point to a valid `Request` whose strings live for the call; `error`
    /// must be null or point to a writable `Buffer`.
    pub unsafe extern "C" fn convert<C: Converter>(
        request: *const Request,
        error: *mut Buffer,
    ) -> i32 {
        guarded(error, || {
            if request.is_null() {
                return Err(ConvertError::internal("the host passed no request"));
            }
            // SAFETY: checked non-null; the host keeps the request alive for the call.
            let request = unsafe { &*request };
            let input_path = text(request.input_path, "input path")?;
            let output_path = text(request.output_path, "output path")?;
            let view = crate::sdk::Request::new(
                &text(request.source, "source format")?,
                &text(request.target, "target format")?,
                &text(request.options_json, "options")?,
            );
            let mut input = Input::from_path(input_path)?;
            let mut output = Output::to_file(output_path)?;
            C::convert(&view, &mut input, &mut output)?;
            std::io::Write::flush(&mut output)?;
            Ok(Vec::new())
        })
    }

    /// `PluginV1::template` of `C`.
    ///
    /// # Safety
    /// `format` must be a NUL-terminated string; `out` null or a writable `Buffer`.
    pub unsafe extern "C" fn template<C: Converter>(
        format: *const c_char,
        out: *mut Buffer,
    ) -> i32 {
        guarded(out, || C::template(&text(format, "format")?))
    }

    /// `PluginV1::free`.
    ///
    /// # Safety
    /// `buffer` must come from this library and not have been freed.
    pub unsafe extern "C" fn free(buffer: Buffer) {
        if !buffer.ptr.is_null() {
            // SAFETY: the buffer was made by `into_buffer` from a `Vec<u8>` with exactly
            // this pointer, length and capacity.
            drop(unsafe { Vec::from_raw_parts(buffer.ptr, buffer.len, buffer.cap) });
        }
    }
}
