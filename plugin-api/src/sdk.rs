//! What a plugin author implements ([`Converter`]) and what a conversion receives
//! ([`Request`], [`Input`], [`Output`]).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::ConvertError;
use crate::info::PluginInfo;

/// A converter plugin. Implement this, then export it with [`crate::export_plugin!`]
/// (WebAssembly) or `export_native_plugin!` (native libraries).
pub trait Converter {
    /// Describes the plugin: name, version, conversions, options. Must be cheap and return
    /// the same every time.
    fn describe() -> PluginInfo;

    /// Converts `input` (of format `request.source`) to `request.target`, writing to
    /// `output`.
    fn convert(
        request: &Request,
        input: &mut Input,
        output: &mut Output<'_>,
    ) -> Result<(), ConvertError>;

    /// A small, valid example file of `format`, for formats listed with
    /// [`PluginInfo::template`].
    fn template(format: &str) -> Result<Vec<u8>, ConvertError> {
        Err(ConvertError::unsupported(format!(
            "no template of `{format}`"
        )))
    }
}

/// What to convert to what, with which options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The input's format (canonical name, e.g. `png`).
    pub source: String,
    /// The format to write.
    pub target: String,
    options: String,
}

impl Request {
    /// A request; `options` is a JSON object (empty means none).
    pub fn new(source: &str, target: &str, options: &str) -> Self {
        Self {
            source: source.to_owned(),
            target: target.to_owned(),
            options: options.to_owned(),
        }
    }

    /// The options as `T`; absent fields take `T`'s defaults. A value `T` does not accept
    /// is an invalid-options error naming the field.
    pub fn options<T: DeserializeOwned + Default>(&self) -> Result<T, ConvertError> {
        let text = self.options.trim();
        if text.is_empty() || text == "{}" || text == "null" {
            return Ok(T::default());
        }
        serde_json::from_str(text).map_err(|error| ConvertError::invalid_options(error.to_string()))
    }

    /// The options as JSON text.
    pub fn options_json(&self) -> &str {
        &self.options
    }

    /// `(source, target)`.
    pub fn pair(&self) -> (&str, &str) {
        (&self.source, &self.target)
    }
}

/// The input file. It may be larger than the plugin's memory: prefer [`Input::reader`]
/// to [`Input::read_all`] when the format can be read as a stream.
#[derive(Debug)]
pub struct Input {
    path: PathBuf,
    size: u64,
}

impl Input {
    /// The input at `path`, of `size` bytes.
    pub fn new(path: impl Into<PathBuf>, size: u64) -> Self {
        Self {
            path: path.into(),
            size,
        }
    }

    /// The input at `path`; its size is read from the file.
    pub fn from_path(path: impl Into<PathBuf>) -> Result<Self, ConvertError> {
        let path = path.into();
        let size = std::fs::metadata(&path)?.len();
        Ok(Self { path, size })
    }

    /// Where the file is (inside the sandbox for WebAssembly plugins).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file, to read and seek.
    pub fn open(&self) -> Result<File, ConvertError> {
        Ok(File::open(&self.path)?)
    }

    /// A buffered reader over the file (also `Seek`).
    pub fn reader(&self) -> Result<BufReader<File>, ConvertError> {
        Ok(BufReader::with_capacity(256 * 1024, self.open()?))
    }

    /// The whole file in memory.
    pub fn read_all(&self) -> Result<Vec<u8>, ConvertError> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        self.open()?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// The whole file as UTF-8 text; anything else is malformed input.
    pub fn read_text(&self) -> Result<String, ConvertError> {
        String::from_utf8(self.read_all()?).map_err(|error| {
            ConvertError::malformed(format!("the input is not UTF-8 text: {error}"))
        })
    }
}

/// Where the result goes. Write to it with [`std::io::Write`]; the host caps its size.
///
/// The lifetime ties an output to the host stream it writes to, so it cannot outlive the
/// conversion.
pub struct Output<'a> {
    sink: Sink,
    written: u64,
    _stream: PhantomData<&'a ()>,
}

enum Sink {
    File(BufWriter<File>, PathBuf),
    Memory(Vec<u8>),
    #[cfg(target_arch = "wasm32")]
    Stream(crate::guest::StreamWriter),
}

impl Output<'static> {
    /// An output written to a file (native plugins and tests).
    pub fn to_file(path: impl Into<PathBuf>) -> Result<Self, ConvertError> {
        let path = path.into();
        let file = File::create(&path)?;
        Ok(Self {
            sink: Sink::File(BufWriter::with_capacity(256 * 1024, file), path),
            written: 0,
            _stream: PhantomData,
        })
    }

    /// An output kept in memory (tests).
    pub fn memory() -> Self {
        Self {
            sink: Sink::Memory(Vec::new()),
            written: 0,
            _stream: PhantomData,
        }
    }
}

impl<'a> Output<'a> {
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn stream(stream: &'a crate::bindings::wasi::io::streams::OutputStream) -> Self {
        Self {
            sink: Sink::Stream(crate::guest::StreamWriter::new(stream)),
            written: 0,
            _stream: PhantomData,
        }
    }

    /// The output file's path, for native plugins whose engine writes files itself
    /// (`None` for WebAssembly plugins: write through [`std::io::Write`]).
    pub fn path(&self) -> Option<&Path> {
        match &self.sink {
            Sink::File(_, path) => Some(path),
            _ => None,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// What a memory output holds (empty for other outputs).
    pub fn into_bytes(self) -> Vec<u8> {
        match self.sink {
            Sink::Memory(bytes) => bytes,
            _ => Vec::new(),
        }
    }
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = match &mut self.sink {
            Sink::File(file, _) => file.write(buf)?,
            Sink::Memory(bytes) => {
                bytes.extend_from_slice(buf);
                buf.len()
            }
            #[cfg(target_arch = "wasm32")]
            Sink::Stream(stream) => stream.write(buf)?,
        };
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::File(file, _) => file.flush(),
            Sink::Memory(_) => Ok(()),
            #[cfg(target_arch = "wasm32")]
            Sink::Stream(stream) => stream.flush(),
        }
    }
}

/// Runs a converter natively on a file and returns the output bytes: for a plugin's own
/// unit tests (`cargo test -p my-plugin`), with no host involved.
pub fn convert_file<C: Converter>(
    input: impl AsRef<Path>,
    source: &str,
    target: &str,
    options: &str,
) -> Result<Vec<u8>, ConvertError> {
    let mut input = Input::from_path(input.as_ref())?;
    let mut output = Output::memory();
    C::convert(
        &Request::new(source, target, options),
        &mut input,
        &mut output,
    )?;
    output.flush()?;
    Ok(output.into_bytes())
}

/// Like [`convert_file`], for input bytes (written to a temporary file first).
pub fn convert_bytes<C: Converter>(
    bytes: &[u8],
    source: &str,
    target: &str,
    options: &str,
) -> Result<Vec<u8>, ConvertError> {
    let path = std::env::temp_dir().join(format!(
        "metamorph-plugin-test-{}-{}.{source}",
        std::process::id(),
        NEXT_TEMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&path, bytes)?;
    let result = convert_file::<C>(&path, source, target, options);
    let _ = std::fs::remove_file(&path);
    result
}

static NEXT_TEMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
