//! The contract between Metamorph and its converter plugins, and the kit to write one.
//!
//! The three things you need: the [`Converter`] trait, the [`export_plugin!`] macro and
//! [`ConvertError`]. A whole plugin:
//!
//! ```
//! use std::io::Write;
//! use metamorph_plugin_api::{ConvertError, Converter, Input, Output, PluginInfo, Request};
//!
//! /// Options of `shout`.
//! #[derive(Default, serde::Deserialize, schemars::JsonSchema)]
//! #[serde(default, deny_unknown_fields)]
//! pub struct Options {
//!     /// Add this many exclamation marks.
//!     pub bangs: u8,
//! }
//!
//! /// Turns text into upper case.
//! pub struct Shout;
//!
//! impl Converter for Shout {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("shout", "1.0.0")
//!             .description("Turns text into upper case")
//!             .options::<Options>()
//!             .convert("txt", "txt", 10)
//!     }
//!
//!     fn convert(request: &Request, input: &mut Input, output: &mut Output<'_>) -> Result<(), ConvertError> {
//!         let options: Options = request.options()?;
//!         let text = input.read_text()?.to_uppercase();
//!         output.write_all(text.as_bytes())?;
//!         output.write_all("!".repeat(usize::from(options.bangs)).as_bytes())?;
//!         Ok(())
//!     }
//! }
//!
//! metamorph_plugin_api::export_plugin!(Shout);
//!
//! let out = metamorph_plugin_api::convert_bytes::<Shout>(b"hi", "txt", "txt", r#"{"bangs":2}"#).unwrap();
//! assert_eq!(out, b"HI!!");
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and drop the `.wasm` into
//! the service's plugins folder. `plugin-api/README.md` is the full guide.

#![warn(missing_docs)]

pub mod error;
pub mod format;
pub mod info;
pub mod native;
mod sdk;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;

/// The generated bindings of `wit/plugin.wit` (WebAssembly builds only).
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all, reason = "generated code")]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "converter-plugin",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "metamorph_plugin_api::bindings",
        generate_all,
    });
}

pub use error::{ConvertError, ErrorKind};
pub use format::{FormatName, FormatNameError, KNOWN_FORMATS, KnownFormat, known_format};
pub use info::{Conversion, FormatInfo, PluginInfo};
pub use sdk::{Converter, Input, Output, Request, convert_bytes, convert_file};

/// Exports a [`Converter`] as a WebAssembly component (for `wasm32-wasip2` builds; on
/// other targets it expands to nothing, so the crate's native unit tests still build).
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct MetamorphPluginExport;

            impl $crate::bindings::exports::metamorph::plugin::converter::Guest for MetamorphPluginExport {
                fn describe() -> $crate::bindings::metamorph::plugin::types::PluginInfo {
                    $crate::guest::describe::<$plugin>()
                }

                fn convert(
                    request: $crate::bindings::metamorph::plugin::types::ConvertRequest,
                    output: &$crate::bindings::wasi::io::streams::OutputStream,
                ) -> ::core::result::Result<(), $crate::bindings::metamorph::plugin::types::ConvertError> {
                    $crate::guest::convert::<$plugin>(request, output)
                }

                fn template(
                    format: ::std::string::String,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::bindings::metamorph::plugin::types::ConvertError> {
                    $crate::guest::template::<$plugin>(&format)
                }
            }

            $crate::bindings::export_bindings!(MetamorphPluginExport with_types_in $crate::bindings);
        };
    };
}

/// Exports a [`Converter`] as a native plugin library (crate type `cdylib`, feature
/// `native` of this crate). The only `unsafe` a native plugin needs is inside this macro.
#[cfg(feature = "native")]
#[macro_export]
macro_rules! export_native_plugin {
    ($plugin:ty) => {
        /// The entry point the host looks up (see `metamorph_plugin_api::native`).
        #[allow(unsafe_code, reason = "the one exported C symbol of a native plugin")]
        #[unsafe(no_mangle)]
        pub extern "C" fn metamorph_native_plugin_v1() -> *const $crate::native::PluginV1 {
            static TABLE: $crate::native::PluginV1 = $crate::native::PluginV1 {
                abi_version: $crate::native::ABI_VERSION,
                describe: $crate::native::export::describe::<$plugin>,
                convert: $crate::native::export::convert::<$plugin>,
                template: $crate::native::export::template::<$plugin>,
                free: $crate::native::export::free,
            };
            &TABLE
        }
    };
}
