//! Reading PDF files with typed errors, and writing new ones.

use std::io::{BufWriter, Write};

use lopdf::xref::{XrefRecovery, XrefType};
use lopdf::{DecompressError, Dictionary, Document, LoadOptions, Object, ObjectId, Stream};
use metamorph_plugin_api::ConvertError;

use crate::MAX_STREAM_BYTES;

/// The largest page side PDF readers accept, in points (200 inches).
pub(crate) const MAX_PAGE_SIDE: f64 = 14_400.0;

/// Reads a PDF: broken files are malformed input, encrypted ones unsupported.
///
/// A file whose cross-reference table had to be rebuilt by scanning for objects is refused
/// as malformed rather than guessed at: what such a scan finds may be an older revision or
/// miss objects, so the output could silently lose content.
pub(crate) fn load(bytes: &[u8]) -> Result<Document, ConvertError> {
    if !bytes.windows(5).take(1024).any(|window| window == b"%PDF-") {
        return Err(ConvertError::malformed(
            "the input is not a PDF: it has no `%PDF-` header",
        ));
    }
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_STREAM_BYTES),
        ..LoadOptions::default()
    };
    let document = Document::load_mem_with_options(bytes, options).map_err(|error| {
        if declares_encryption(bytes) {
            encrypted()
        } else {
            read_error(&error)
        }
    })?;
    if document.encryption_state.is_some() || document.trailer.has(b"Encrypt") {
        return Err(encrypted());
    }
    if document.xref_recovery == Some(XrefRecovery::Reconstructed) {
        return Err(ConvertError::malformed(
            "the PDF is damaged: its cross-reference table does not match its objects, so its \
             pages cannot be found reliably (a repair tool such as `qpdf in.pdf out.pdf` may fix it)",
        ));
    }
    if document.page_iter().next().is_none() {
        return Err(ConvertError::malformed("the PDF has no pages"));
    }
    Ok(document)
}

/// Whether a trailer of the file names an `/Encrypt` dictionary.
fn declares_encryption(bytes: &[u8]) -> bool {
    bytes.windows(8).any(|window| window == b"/Encrypt")
}

fn encrypted() -> ConvertError {
    ConvertError::unsupported(
        "the PDF is encrypted: remove its password or encryption first (for example with \
         `qpdf --decrypt`), then convert it",
    )
}

/// The error for a PDF that lopdf could not read.
pub(crate) fn read_error(error: &lopdf::Error) -> ConvertError {
    match error {
        lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { limit }) => {
            ConvertError::limit(format!(
                "a stream of the PDF inflates past {} MiB",
                limit / 1024 / 1024
            ))
        }
        // The PDF is read from memory: what lopdf reports as I/O is a stream that does not
        // decode, such as a bad predictor.
        other => ConvertError::malformed(format!("the PDF cannot be read: {other}")),
    }
}

/// A new PDF under construction: pages are added in order, then [`PdfWriter::finish`] gives
/// the file.
pub(crate) struct PdfWriter {
    document: Document,
    pages_id: ObjectId,
    kids: Vec<Object>,
}

impl PdfWriter {
    /// An empty document of PDF `version` (such as "1.4").
    pub(crate) fn new(version: &str) -> Self {
        let mut document = Document::with_version(version);
        // A classic cross-reference table: every reader knows it, and it needs no PDF 1.5.
        document.reference_table.cross_reference_type = XrefType::CrossReferenceTable;
        let pages_id = document.new_object_id();
        Self {
            document,
            pages_id,
            kids: Vec::new(),
        }
    }

    /// Adds an object and returns its reference.
    pub(crate) fn add(&mut self, object: impl Into<Object>) -> ObjectId {
        self.document.add_object(object)
    }

    /// Adds a page of `width` × `height` points drawing `content` with `resources`. The
    /// content stream is Flate-compressed.
    pub(crate) fn add_page(
        &mut self,
        width: f64,
        height: f64,
        content: Vec<u8>,
        resources: Object,
    ) -> Result<(), ConvertError> {
        let mut stream = Stream::new(Dictionary::new(), content);
        stream.compress().map_err(|error| {
            ConvertError::internal(format!("compressing a page failed: {error}"))
        })?;
        let content_id = self.add(stream);
        let mut page = Dictionary::new();
        page.set("Type", Object::Name(b"Page".to_vec()));
        page.set("Parent", self.pages_id);
        page.set(
            "MediaBox",
            vec![0.into(), 0.into(), real(width), real(height)],
        );
        page.set("Resources", resources);
        page.set("Contents", content_id);
        let page_id = self.add(page);
        self.kids.push(page_id.into());
        Ok(())
    }

    /// How many pages were added.
    pub(crate) fn page_count(&self) -> usize {
        self.kids.len()
    }

    /// Writes the finished file to `out`; `title` becomes the document's title.
    pub(crate) fn finish(
        mut self,
        title: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<(), ConvertError> {
        let count = i64::try_from(self.kids.len())
            .map_err(|_overflow| ConvertError::limit("too many pages"))?;
        let mut pages = Dictionary::new();
        pages.set("Type", Object::Name(b"Pages".to_vec()));
        pages.set("Kids", std::mem::take(&mut self.kids));
        pages.set("Count", count);
        self.document
            .objects
            .insert(self.pages_id, Object::Dictionary(pages));

        let mut catalog = Dictionary::new();
        catalog.set("Type", Object::Name(b"Catalog".to_vec()));
        catalog.set("Pages", self.pages_id);
        let catalog_id = self.add(catalog);
        self.document.trailer.set("Root", catalog_id);

        let mut info = Dictionary::new();
        info.set("Producer", Object::string_literal("Metamorph"));
        if let Some(title) = title.filter(|title| !title.trim().is_empty()) {
            info.set("Title", text_string(title.trim()));
        }
        let info_id = self.add(info);
        self.document.trailer.set("Info", info_id);
        save(&mut self.document, out)
    }
}

/// Writes `document` to `out`, object by object.
pub(crate) fn save(document: &mut Document, out: &mut dyn Write) -> Result<(), ConvertError> {
    let mut buffered = BufWriter::with_capacity(256 * 1024, out);
    document.save_to(&mut buffered)?;
    buffered.flush()?;
    Ok(())
}

/// A PDF real number, rounded to what a page needs.
pub(crate) fn real(value: f64) -> Object {
    // Page geometry is well within f32; lopdf stores reals as f32.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "rounded to 1/1000 point first"
    )]
    let rounded = ((value * 1000.0).round() / 1000.0) as f32;
    Object::Real(rounded)
}

/// A PDF text string (UTF-16BE with a byte order mark, which holds any text).
pub(crate) fn text_string(text: &str) -> Object {
    let mut bytes = vec![0xFE, 0xFF];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_be_bytes());
    }
    Object::String(bytes, lopdf::StringFormat::Hexadecimal)
}
