//! A plugin that misbehaves on request, so the host's limits can be tested: `txt` → `txt`
//! with `{"behaviour": "..."}`.

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
}

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
        PluginInfo::new("hostile", env!("CARGO_PKG_VERSION"))
            .description("Misbehaves on request (test fixture)")
            .options::<Options>()
            .convert("txt", "txt", 1)
    }

    fn convert(request: &Request, input: &mut Input, output: &mut Output<'_>) -> Result<(), ConvertError> {
        let options: Options = request.options()?;
        match options.behaviour {
            Behaviour::Echo => output.write_all(&input.read_all()?)?,
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
            Behaviour::Flood => {
                let block = vec![b'x'; 64 * 1024];
                loop {
                    output.write_all(&block)?;
                }
            }
            Behaviour::Refuse => return Err(ConvertError::malformed("refused on request")),
        }
        Ok(())
    }
}

metamorph_plugin_api::export_plugin!(Hostile);
