//! HTTP `Range` requests on a file of known size (RFC 9110 §14).

use std::ops::Range;

/// What to send for a request's `Range` header.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// The whole file (no header, a unit other than bytes, several ranges or a header
    /// that does not parse: all are served whole, as the RFC allows).
    Full,
    /// One part: 206 with `Content-Range`.
    Partial(Range<u64>),
    /// Nothing of the file lies in the range: 416.
    Unsatisfiable,
}

/// Reads `header` for a file of `size` bytes.
pub fn answer(header: Option<&str>, size: u64) -> RangeAnswer {
    let Some(header) = header else {
        return RangeAnswer::Full;
    };
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |text: &str| text.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if size == 0 => RangeAnswer::Unsatisfiable,
            Some(suffix) => RangeAnswer::Partial(size.saturating_sub(suffix)..size),
            None => RangeAnswer::Full,
        },
        // `bytes=A-`: from A to the end.
        (false, true) => match parse(first) {
            Some(start) if start < size => RangeAnswer::Partial(start..size),
            Some(_) => RangeAnswer::Unsatisfiable,
            None => RangeAnswer::Full,
        },
        // `bytes=A-B`: A to B inclusive, B clamped to the end.
        (false, false) => match (parse(first), parse(last)) {
            (Some(start), Some(end)) if start <= end => {
                if start < size {
                    RangeAnswer::Partial(start..end.saturating_add(1).min(size))
                } else {
                    RangeAnswer::Unsatisfiable
                }
            }
            _ => RangeAnswer::Full,
        },
        (true, true) => RangeAnswer::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::RangeAnswer::{Full, Partial, Unsatisfiable};
    use super::answer;

    #[test]
    fn single_ranges_are_served_and_clamped() {
        assert_eq!(answer(Some("bytes=0-99"), 1000), Partial(0..100));
        assert_eq!(answer(Some("bytes=500-"), 1000), Partial(500..1000));
        assert_eq!(answer(Some("bytes=-100"), 1000), Partial(900..1000));
        assert_eq!(answer(Some("bytes=-5000"), 1000), Partial(0..1000));
        assert_eq!(answer(Some("bytes=900-5000"), 1000), Partial(900..1000));
        assert_eq!(answer(Some("bytes = 1-1"), 10), Full);
        assert_eq!(answer(Some("bytes=1-1"), 10), Partial(1..2));
    }

    #[test]
    fn ranges_outside_the_file_are_unsatisfiable() {
        assert_eq!(answer(Some("bytes=1000-"), 1000), Unsatisfiable);
        assert_eq!(answer(Some("bytes=1000-2000"), 1000), Unsatisfiable);
        assert_eq!(answer(Some("bytes=-0"), 1000), Unsatisfiable);
        assert_eq!(answer(Some("bytes=0-"), 0), Unsatisfiable);
    }

    #[test]
    fn anything_else_is_the_whole_file() {
        for header in [
            None,
            Some("items=0-1"),
            Some("bytes=0-1,5-6"),
            Some("bytes=5-1"),
            Some("bytes=x-"),
            Some("bytes=-"),
        ] {
            assert_eq!(answer(header, 1000), Full, "{header:?}");
        }
    }
}
