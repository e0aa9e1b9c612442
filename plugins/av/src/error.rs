//! Turning FFmpeg's errors into [`ConvertError`]s whose messages say what went wrong.

use std::fmt::Display;

use ffmpeg_next as ffmpeg;
use metamorph_plugin_api::ConvertError;

/// FFmpeg's description of `error`, starting in lower case to fit into our messages.
pub(crate) fn describe(error: &ffmpeg::Error) -> String {
    let text = error.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Whether `error` means "nothing now, try again after feeding more".
pub(crate) fn is_again(error: &ffmpeg::Error) -> bool {
    matches!(error, ffmpeg::Error::Other { errno } if *errno == ffmpeg::error::EAGAIN)
}

/// The input is broken: `what` failed because of `error`.
pub(crate) fn malformed(what: impl Display, error: &ffmpeg::Error) -> ConvertError {
    ConvertError::malformed(format!("{what}: {}", describe(error)))
}

/// Something on our side failed: `what`, because of `error`.
pub(crate) fn internal(what: impl Display, error: &ffmpeg::Error) -> ConvertError {
    ConvertError::internal(format!("{what}: {}", describe(error)))
}

/// Writing the output failed. A full disk or the host's cap on the output's size is a limit;
/// anything else is internal.
pub(crate) fn write_failed(error: &ffmpeg::Error) -> ConvertError {
    match error {
        ffmpeg::Error::Other { errno }
            if *errno == ffmpeg::error::EFBIG || *errno == ffmpeg::error::ENOSPC =>
        {
            ConvertError::limit(format!("the output is too large: {}", describe(error)))
        }
        _ => internal("writing the output failed", error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_start_in_lower_case() {
        // FFmpeg's error texts are registered when it is initialised.
        crate::init().unwrap();
        let error = malformed("the input is unreadable", &ffmpeg::Error::InvalidData);
        assert_eq!(
            error.message,
            "the input is unreadable: invalid data found when processing input"
        );
    }

    #[test]
    fn a_file_too_large_to_write_is_a_limit() {
        let error = write_failed(&ffmpeg::Error::Other {
            errno: ffmpeg::error::EFBIG,
        });
        assert_eq!(error.kind, metamorph_plugin_api::ErrorKind::LimitExceeded);
    }
}
