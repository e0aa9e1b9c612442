//! A plugin that misbehaves on request, so the host's limits can be tested: `txt` → `txt`
//! with `{"behaviour": "..."}`, and templates of made-up formats named after what they do
//! (`hang`, `bomb`, `crash`, `segfault`, `slow`, `echo`).
//!
//! It builds both as a WebAssembly component (`hostile`) and as a native library
//! (`hostile-native`), so both sandboxes are tested with the same misbehaviour.

use std::io::Write;

use metamorph_plugin_api::{ConvertError, Converter, Input, Output, PluginInfo, Request};
use schemars::JsonSchema;
use serde::Deserialize;

/// What to do.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Copy the input (behave).
    #[default]
    Echo,
    /// Loop forever.
    Loop,
    /// Allocate memory until something gives.
    Allocate,
    /// Panic.
    Panic,
    /// Write output without end.
    Flood,
    /// Return a malformed-input error.
    Refuse,
    /// Write through a null pointer (a segmentation fault natively; a trap in wasm).
    Segfault,
    /// Work for 1.5 s, then copy the input.
    Slow,
}

/// Does what `behaviour` says; returns the bytes to output.
fn act(
    behaviour: &Behaviour,
    input: impl FnOnce() -> Result<Vec<u8>, ConvertError>,
) -> Result<Vec<u8>, ConvertError> {
    match behaviour {
        Behaviour::Echo => input(),
        Behaviour::Loop => {
            let mut counter: u64 = 0;
            loop {
                counter = std::hint::black_box(counter.wrapping_add(1));
            }
        }
        Behaviour::Allocate => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1; 16 * 1024 * 1024]);
                std::hint::black_box(&hoard);
            }
        }
        Behaviour::Panic => panic!("the hostile plugin panics on request"),
        Behaviour::Flood => Ok(vec![b'x'; 64 * 1024 * 1024]),
        Behaviour::Refuse => Err(ConvertError::malformed("refused on request")),
        Behaviour::Segfault => {
            segfault();
            Err(ConvertError::internal(
                "still alive after a segmentation fault",
            ))
        }
        Behaviour::Slow => {
            let started = std::time::Instant::now();
            let mut counter: u64 = 0;
            while started.elapsed() < std::time::Duration::from_millis(1500) {
                counter = std::hint::black_box(counter.wrapping_add(1));
            }
            input()
        }
    }
}

#[allow(
    unsafe_code,
    reason = "a deliberate crash, to test that the host survives one"
)]
fn segfault() {
    #[cfg(target_arch = "wasm32")]
    std::arch::wasm32::unreachable();
    // SAFETY: not safe at all, on purpose: this writes through a null pointer so that the
    // process receives SIGSEGV.
    #[cfg(not(target_arch = "wasm32"))]
    unsafe {
        std::ptr::null_mut::<u8>().write_volatile(1);
    }
}

/// The made-up template formats and what they do.
const TEMPLATES: [(&str, Behaviour); 7] = [
    ("echo", Behaviour::Echo),
    ("hang", Behaviour::Loop),
    ("bomb", Behaviour::Allocate),
    ("crash", Behaviour::Panic),
    ("segfault", Behaviour::Segfault),
    ("slow", Behaviour::Slow),
    ("flood", Behaviour::Flood),
];

/// Options.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// What to do.
    pub behaviour: Behaviour,
}

/// The misbehaving plugin.
pub struct Hostile;

impl Converter for Hostile {
    fn describe() -> PluginInfo {
        let name = if cfg!(target_arch = "wasm32") {
            "hostile"
        } else {
            "hostile-native"
        };
        let mut info = PluginInfo::new(name, env!("CARGO_PKG_VERSION"))
            .description("Misbehaves on request (test fixture)")
            .options::<Options>()
            .convert("txt", "txt", 1);
        for (format, _) in &TEMPLATES {
            info = info.template(format);
        }
        info
    }

    fn template(format: &str) -> Result<Vec<u8>, ConvertError> {
        let behaviour = TEMPLATES
            .iter()
            .find(|(name, _)| *name == format)
            .map(|(_, behaviour)| behaviour)
            .ok_or_else(|| ConvertError::unsupported(format!("no template of `{format}`")))?;
        act(behaviour, || {
            Ok(format!("an example of {format}\n").into_bytes())
        })
    }

    fn convert(
        request: &Request,
        input: &mut Input,
        output: &mut Output<'_>,
    ) -> Result<(), ConvertError> {
        let options: Options = request.options()?;
        if let Behaviour::Flood = options.behaviour {
            let block = vec![b'x'; 64 * 1024];
            loop {
                output.write_all(&block)?;
            }
        }
        let bytes = act(&options.behaviour, || input.read_all())?;
        output.write_all(&bytes)?;
        Ok(())
    }
}

metamorph_plugin_api::export_plugin!(Hostile);
#[cfg(not(target_arch = "wasm32"))]
metamorph_plugin_api::export_native_plugin!(Hostile);
