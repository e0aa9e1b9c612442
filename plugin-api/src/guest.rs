//! The WebAssembly side of the contract: the bindings of `wit/plugin.wit` and the glue
//! that [`crate::export_plugin!`] wires to a [`Converter`].

use std::io;

use crate::bindings::metamorph::plugin::types as wit;
use crate::bindings::wasi::io::streams::{OutputStream, StreamError};
use crate::error::{ConvertError, ErrorKind};
use crate::sdk::{Converter, Input, Output, Request};

/// Describes `C` in the contract's types.
pub fn describe<C: Converter>() -> wit::PluginInfo {
    let info = C::describe();
    wit::PluginInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        conversions: info
            .conversions
            .into_iter()
            .map(|conversion| wit::Conversion {
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
            .map(|format| wit::FormatInfo {
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

/// Runs `C` on a request from the host.
pub fn convert<C: Converter>(
    request: wit::ConvertRequest,
    output: &OutputStream,
) -> Result<(), wit::ConvertError> {
    let mut input = Input::new(request.input_path, request.input_size);
    let request_view = Request::new(&request.source, &request.target, &request.options);
    let mut out = Output::stream(output);
    let result = C::convert(&request_view, &mut input, &mut out)
        .and_then(|()| io::Write::flush(&mut out).map_err(ConvertError::from));
    result.map_err(to_wit)
}

/// Makes an example file with `C`.
pub fn template<C: Converter>(format: &str) -> Result<Vec<u8>, wit::ConvertError> {
    C::template(format).map_err(to_wit)
}

fn to_wit(error: ConvertError) -> wit::ConvertError {
    match error.kind {
        ErrorKind::Unsupported => wit::ConvertError::Unsupported(error.message),
        ErrorKind::InvalidOptions => wit::ConvertError::InvalidOptions(error.message),
        ErrorKind::MalformedInput => wit::ConvertError::MalformedInput(error.message),
        ErrorKind::LimitExceeded => wit::ConvertError::LimitExceeded(error.message),
        _ => wit::ConvertError::Internal(error.message),
    }
}

/// Buffers writes and hands them to the host's output stream in chunks.
///
/// It holds the stream by pointer so that [`Output`] needs no lifetime in its variants;
/// `Output<'a>` carries the borrow instead, so a writer never outlives its stream.
pub(crate) struct StreamWriter {
    stream: *const OutputStream,
    buffer: Vec<u8>,
}

/// Bytes gathered before they are passed to the host.
const CHUNK: usize = 64 * 1024;

impl StreamWriter {
    pub(crate) fn new(stream: &OutputStream) -> Self {
        Self {
            stream,
            buffer: Vec::with_capacity(CHUNK),
        }
    }

    fn stream(&self) -> &OutputStream {
        // SAFETY: a writer is only made by `Output::stream`, whose `Output<'a>` borrows the
        // stream for `'a` and owns the writer, so the stream outlives every use here.
        #[allow(unsafe_code)]
        unsafe {
            &*self.stream
        }
    }

    /// Passes the gathered bytes to the host.
    fn send(&mut self) -> io::Result<()> {
        self.send_bytes(&self.buffer)?;
        self.buffer.clear();
        Ok(())
    }

    /// Passes `bytes` to the host, as much at a time as the stream permits.
    fn send_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let mut offset = 0;
        while offset < bytes.len() {
            let permitted = match self.stream().check_write() {
                Ok(0) => {
                    self.stream().subscribe().block();
                    continue;
                }
                Ok(permitted) => usize::try_from(permitted).unwrap_or(usize::MAX),
                Err(error) => return Err(stream_error(error)),
            };
            let end = bytes.len().min(offset.saturating_add(permitted));
            self.stream()
                .write(&bytes[offset..end])
                .map_err(stream_error)?;
            offset = end;
        }
        Ok(())
    }
}

fn stream_error(error: StreamError) -> io::Error {
    match error {
        StreamError::Closed => io::Error::new(io::ErrorKind::BrokenPipe, "the output was closed"),
        StreamError::LastOperationFailed(error) => io::Error::other(error.to_debug_string()),
    }
}

impl io::Write for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.buffer.len() + buf.len() > CHUNK {
            self.send()?;
        }
        if buf.len() >= CHUNK {
            // Large writes go to the host as they are, without a copy into the buffer.
            self.send_bytes(buf)?;
        } else {
            self.buffer.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()?;
        self.stream().blocking_flush().map_err(stream_error)
    }
}
