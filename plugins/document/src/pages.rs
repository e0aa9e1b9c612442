//! pdf → pdf: keeping or removing pages.
//!
//! The kept pages move into a new, flat page tree (with the attributes they inherited
//! written into each page), and everything that pointed at a removed page is cut loose
//! before unreachable objects are dropped, so nothing of a removed page stays in the file:
//! links and form fields that led to it go, and so do the outline (bookmarks), page labels
//! and the logical structure tree, which describe the whole document.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;

use lopdf::{Dictionary, Document, Object, ObjectId};
use metamorph_plugin_api::ConvertError;

use crate::options::PageOptions;
use crate::pdf;

/// Page attributes a page inherits from its ancestors in the page tree.
const INHERITED: [&[u8]; 4] = [b"Resources", b"MediaBox", b"CropBox", b"Rotate"];

/// Deepest page tree walked when looking for inherited attributes.
const MAX_TREE_DEPTH: usize = 64;

/// Parses page ranges such as `1-3,5,8-` against a document of `count` pages; `option` names
/// the option in messages. Returns the page numbers, from 1.
pub(crate) fn parse_ranges(
    spec: &str,
    count: u32,
    option: &str,
) -> Result<BTreeSet<u32>, ConvertError> {
    let invalid = |message: String| ConvertError::invalid_options(format!("`{option}`: {message}"));
    let number = |text: &str, range: &str| -> Result<u32, ConvertError> {
        let page: u32 = text.trim().parse().map_err(|_not_a_number| {
            invalid(format!(
                "`{range}` is not a page number or range (write them like \"1-3,5,8-\")"
            ))
        })?;
        if page == 0 {
            return Err(invalid("pages are numbered from 1".to_owned()));
        }
        if page > count {
            return Err(invalid(format!(
                "page {page} is beyond the end of the document, which has {count} page{}",
                if count == 1 { "" } else { "s" }
            )));
        }
        Ok(page)
    };
    let mut pages = BTreeSet::new();
    if spec.trim().is_empty() {
        return Err(invalid(
            "no pages given (write them like \"1-3,5,8-\")".to_owned(),
        ));
    }
    for range in spec.split(',') {
        let range = range.trim();
        if range.is_empty() {
            return Err(invalid(format!(
                "`{spec}` has an empty range between commas"
            )));
        }
        let (first, last) = match range.split_once('-') {
            None => {
                let page = number(range, range)?;
                (page, page)
            }
            Some((first, last)) => {
                let first = if first.trim().is_empty() {
                    1
                } else {
                    number(first, range)?
                };
                let last = if last.trim().is_empty() {
                    count
                } else {
                    number(last, range)?
                };
                (first, last)
            }
        };
        if first > last {
            return Err(invalid(format!("the range `{range}` runs backwards")));
        }
        pages.extend(first..=last);
    }
    Ok(pages)
}

/// pdf → pdf with `options`.
pub(crate) fn select(
    mut document: Document,
    options: &PageOptions,
    out: &mut dyn Write,
) -> Result<(), ConvertError> {
    let page_ids: Vec<ObjectId> = document.page_iter().collect();
    let count = u32::try_from(page_ids.len())
        .map_err(|_too_many| ConvertError::limit("the PDF has too many pages"))?;
    let keep = match (&options.pages, &options.remove) {
        (Some(pages), None) => parse_ranges(pages, count, "pages")?,
        (None, Some(remove)) => {
            let removed = parse_ranges(remove, count, "remove")?;
            let keep: BTreeSet<u32> = (1..=count).filter(|page| !removed.contains(page)).collect();
            if keep.is_empty() {
                return Err(ConvertError::invalid_options(format!(
                    "`remove` removes every page of the document, which has {count} page{}; \
                     at least one must stay",
                    if count == 1 { "" } else { "s" }
                )));
            }
            keep
        }
        (Some(_), Some(_)) => {
            return Err(ConvertError::invalid_options(
                "give either `pages` (the pages to keep) or `remove` (the pages to drop), not both",
            ));
        }
        (None, None) => {
            return Err(ConvertError::invalid_options(
                "give `pages` (the pages to keep, such as \"1-3,5\") or `remove` (the pages to \
                 drop)",
            ));
        }
    };
    let mut kept: Vec<ObjectId> = Vec::with_capacity(keep.len());
    for number in &keep {
        if let Some(id) = page_ids.get(usize::try_from(*number - 1).unwrap_or(usize::MAX))
            && !kept.contains(id)
        {
            kept.push(*id);
        }
    }
    if kept.len() < page_ids.len() {
        rebuild(&mut document, &page_ids, &kept)?;
    }
    pdf::save(&mut document, out)
}

/// Makes `kept` the document's pages and removes every other page of `all`.
fn rebuild(
    document: &mut Document,
    all: &[ObjectId],
    kept: &[ObjectId],
) -> Result<(), ConvertError> {
    let kept_set: HashSet<ObjectId> = kept.iter().copied().collect();
    // Annotations of kept pages stay even if a removed page lists them too.
    let mut kept_annotations = HashSet::new();
    for page in kept {
        kept_annotations.extend(annotation_ids(document, *page));
    }
    let mut removed: HashSet<ObjectId> = HashSet::new();
    for page in all.iter().filter(|page| !kept_set.contains(page)) {
        removed.insert(*page);
        removed.extend(
            annotation_ids(document, *page)
                .into_iter()
                .filter(|id| !kept_annotations.contains(id)),
        );
    }

    // Each kept page gets what it inherited, then joins the new tree.
    let root_id = document
        .try_new_object_id()
        .map_err(|error| pdf::read_error(&error))?;
    for page in kept {
        let inherited = inherited_attributes(document, *page);
        let dictionary = document
            .get_dictionary_mut(*page)
            .map_err(|error| pdf::read_error(&error))?;
        for (key, value) in inherited {
            dictionary.set(key, value);
        }
        if !dictionary.has(b"MediaBox") {
            // Required, but missing in the wild: readers assume US Letter.
            dictionary.set("MediaBox", vec![0.into(), 0.into(), 612.into(), 792.into()]);
        }
        dictionary.set("Parent", root_id);
    }
    let mut root = Dictionary::new();
    root.set("Type", "Pages");
    root.set(
        "Kids",
        kept.iter()
            .map(|id| Object::Reference(*id))
            .collect::<Vec<_>>(),
    );
    root.set("Count", i64::try_from(kept.len()).unwrap_or(i64::MAX));
    document.objects.insert(root_id, Object::Dictionary(root));

    let catalog = document
        .catalog_mut()
        .map_err(|error| pdf::read_error(&error))?;
    catalog.set("Pages", root_id);
    for key in [
        &b"Outlines"[..],
        b"PageLabels",
        b"StructTreeRoot",
        b"MarkInfo",
    ] {
        catalog.remove(key);
    }
    if catalog
        .get(b"PageMode")
        .and_then(Object::as_name)
        .is_ok_and(|mode| mode == b"UseOutlines")
    {
        catalog.remove(b"PageMode");
    }

    for (id, object) in &mut document.objects {
        if !removed.contains(id) {
            scrub(object, &removed, 0);
        }
    }
    for trailer_key in [&b"Prev"[..], b"XRefStm"] {
        document.trailer.remove(trailer_key);
    }
    document.prune_objects();
    document.renumber_objects();
    Ok(())
}

/// The object ids of a page's annotations.
fn annotation_ids(document: &Document, page: ObjectId) -> Vec<ObjectId> {
    let Ok(dictionary) = document.get_dictionary(page) else {
        return Vec::new();
    };
    let annotations = match dictionary.get(b"Annots") {
        Ok(Object::Array(array)) => array,
        Ok(Object::Reference(id)) => match document.get_object(*id) {
            Ok(Object::Array(array)) => array,
            _ => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    annotations
        .iter()
        .filter_map(|annotation| annotation.as_reference().ok())
        .collect()
}

/// The inheritable attributes `page` lacks, from its nearest ancestor that has them.
fn inherited_attributes(document: &Document, page: ObjectId) -> Vec<(Vec<u8>, Object)> {
    let Ok(dictionary) = document.get_dictionary(page) else {
        return Vec::new();
    };
    let mut missing: Vec<&[u8]> = INHERITED
        .into_iter()
        .filter(|key| !dictionary.has(key))
        .collect();
    let mut found = Vec::new();
    let mut seen = HashSet::from([page]);
    let mut node = dictionary;
    for _ in 0..MAX_TREE_DEPTH {
        if missing.is_empty() {
            break;
        }
        let Ok(parent) = node.get(b"Parent").and_then(Object::as_reference) else {
            break;
        };
        if !seen.insert(parent) {
            break;
        }
        let Ok(parent_dictionary) = document.get_dictionary(parent) else {
            break;
        };
        missing.retain(|key| match parent_dictionary.get(key) {
            Ok(value) => {
                found.push((key.to_vec(), value.clone()));
                false
            }
            Err(_) => true,
        });
        node = parent_dictionary;
    }
    found
}

/// Whether `object` is a destination (an array starting with a page) to a removed page.
fn dead_destination(object: &Object, removed: &HashSet<ObjectId>) -> bool {
    match object {
        Object::Array(array) => {
            matches!(array.first(), Some(Object::Reference(id)) if removed.contains(id))
        }
        _ => false,
    }
}

/// Deepest nesting of direct objects followed; deeper content is left alone.
const MAX_NESTING: usize = 64;

/// Cuts references to `removed` objects out of `object`: dictionary entries that hold one,
/// or a destination to one, go; array elements that are one go, and destinations to one
/// become null (arrays such as name trees pair their elements).
fn scrub(object: &mut Object, removed: &HashSet<ObjectId>, depth: usize) {
    if depth > MAX_NESTING {
        return;
    }
    match object {
        Object::Dictionary(dictionary) => scrub_dictionary(dictionary, removed, depth),
        Object::Stream(stream) => scrub_dictionary(&mut stream.dict, removed, depth),
        Object::Array(array) => {
            array.retain(
                |element| !matches!(element, Object::Reference(id) if removed.contains(id)),
            );
            for element in array.iter_mut() {
                if dead_destination(element, removed) {
                    *element = Object::Null;
                } else {
                    scrub(element, removed, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn scrub_dictionary(dictionary: &mut Dictionary, removed: &HashSet<ObjectId>, depth: usize) {
    let dead: Vec<Vec<u8>> = dictionary
        .iter()
        .filter(|(_, value)| {
            matches!(value, Object::Reference(id) if removed.contains(id))
                || dead_destination(value, removed)
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in dead {
        dictionary.remove(&key);
    }
    for (_, value) in dictionary.iter_mut() {
        scrub(value, removed, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ranges;
    use metamorph_plugin_api::ErrorKind;

    fn pages(spec: &str, count: u32) -> Vec<u32> {
        parse_ranges(spec, count, "pages")
            .unwrap()
            .into_iter()
            .collect()
    }

    #[test]
    fn ranges_list_single_pages_closed_and_open_ranges() {
        assert_eq!(pages("1-3,5,8-", 10), [1, 2, 3, 5, 8, 9, 10]);
        assert_eq!(pages(" -2 , 4 ", 5), [1, 2, 4]);
        assert_eq!(pages("3,1,3", 5), [1, 3]);
    }

    #[test]
    fn a_page_beyond_the_document_is_refused_naming_the_page_count() {
        let error = parse_ranges("2-20", 14, "pages").unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidOptions);
        assert!(error.message.contains("14 pages"), "{}", error.message);
    }

    #[test]
    fn malformed_ranges_are_invalid_options() {
        for spec in ["", "0", "a-b", "3-1", "1,,2", "1-2-3"] {
            let error = parse_ranges(spec, 5, "pages").unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidOptions, "{spec:?}");
        }
    }
}
