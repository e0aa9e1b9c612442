//! A plugin whose description lies: format names that are paths, an options schema that
//! is not JSON, and a pair it does not convert. The host must refuse it at load time.

use metamorph_plugin_api::{ConvertError, Converter, Input, Output, PluginInfo, Request};

/// The lying plugin.
pub struct Liar;

impl Converter for Liar {
    fn describe() -> PluginInfo {
        let mut info = PluginInfo::new("liar", env!("CARGO_PKG_VERSION"))
            .description("Lies about itself (test fixture)")
            .convert("../../etc/passwd", "png", 1)
            .convert("png", "pdf", 1);
        info.options_schema = "this is { not json".to_owned();
        info
    }

    fn convert(
        _request: &Request,
        _input: &mut Input,
        _output: &mut Output<'_>,
    ) -> Result<(), ConvertError> {
        Err(ConvertError::unsupported("the liar converts nothing"))
    }
}

metamorph_plugin_api::export_plugin!(Liar);
