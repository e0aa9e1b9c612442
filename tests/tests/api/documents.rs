//! The document plugin, checked by poppler (`pdfinfo`, `pdftotext`) and qpdf, and routes
//! that chain the image and document plugins.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use metamorph_tests::{Auth, Backend, Cli, Server, corpus};

const IMAGE: &str = "metamorph_plugin_image.wasm";
const DOCUMENT: &str = "metamorph_plugin_document.wasm";

/// Runs `program args… file` and returns its standard output; fails with its error output.
fn tool(program: &str, args: &[&str], file: &Path) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    ensure!(
        output.status.success(),
        "{program} {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What `pdfinfo` says of a PDF: its page count and the first page's size in points. qpdf
/// checks its structure first.
fn pdf_pages(path: &Path) -> Result<(u32, f64, f64)> {
    tool("qpdf", &["--check"], path)?;
    let info = tool("pdfinfo", &[], path)?;
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .with_context(|| format!("pdfinfo gave no {name}\n{info}"))
    };
    let pages = field("Pages:")?.parse()?;
    // "Page size:       595.276 x 841.89 pts (A4)"
    let size: Vec<f64> = field("Page size:")?
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    ensure!(size.len() >= 2, "page size in {info}");
    Ok((pages, size[0], size[1]))
}

/// The text poppler extracts from a PDF.
fn pdf_text(path: &Path) -> Result<String> {
    let output = tempfile::NamedTempFile::new()?;
    let status = Command::new("pdftotext")
        .arg(path)
        .arg(output.path())
        .status()?;
    ensure!(status.success(), "pdftotext {}", path.display());
    Ok(std::fs::read_to_string(output.path())?)
}

/// Words of `text`, lower-cased, without punctuation.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.len() > 2)
        .map(str::to_lowercase)
        .collect()
}

#[test]
fn markdown_and_text_become_html_and_pdf_that_poppler_reads() -> Result<()> {
    let cli = Cli::with_plugins(&[DOCUMENT])?;
    let readme = corpus("data/md-readme.md");

    let html = cli.convert(&readme, "html", &[])?;
    ensure!(html.success, "md → html: {}", html.stderr);
    let page = std::fs::read_to_string(&html.output)?;
    ensure!(page.starts_with("<!DOCTYPE html>"), "a complete page");
    ensure!(page.contains("<h1") && page.contains("</html>"), "{page}");
    let fragment = cli.convert(&readme, "html", &["standalone=false"])?;
    ensure!(fragment.success, "{}", fragment.stderr);
    let fragment = std::fs::read_to_string(&fragment.output)?;
    ensure!(
        !fragment.contains("<html") && fragment.contains("<h1"),
        "{fragment}"
    );

    // Markdown laid out as PDF keeps its words.
    let pdf = cli.convert(&readme, "pdf", &["page_size=letter"])?;
    ensure!(pdf.success, "md → pdf: {}", pdf.stderr);
    let (pages, width, height) = pdf_pages(&pdf.output)?;
    ensure!(pages >= 1, "{pages} pages");
    ensure!(
        (width - 612.0).abs() < 1.0 && (height - 792.0).abs() < 1.0,
        "letter: {width}×{height}"
    );
    let extracted = words(&pdf_text(&pdf.output)?);
    let source = std::fs::read_to_string(&readme)?;
    let first_heading = source
        .lines()
        .find_map(|line| line.strip_prefix("# "))
        .context("the readme has a heading")?;
    for word in words(first_heading) {
        ensure!(extracted.contains(&word), "`{word}` is in the PDF");
    }

    // Plain text: 200 numbered lines flow over several A4 pages, all of them kept.
    let text: String = (1..=200).map(|n| format!("line number {n}\n")).collect();
    let txt = cli.scratch().join("lines.txt");
    std::fs::write(&txt, &text)?;
    let pdf = cli.convert(&txt, "pdf", &["font_size=12"])?;
    ensure!(pdf.success, "txt → pdf: {}", pdf.stderr);
    let (pages, width, height) = pdf_pages(&pdf.output)?;
    ensure!(
        pages >= 3,
        "200 lines of 12 pt take several pages, got {pages}"
    );
    ensure!(
        (width - 595.3).abs() < 1.0 && (height - 841.9).abs() < 1.0,
        "A4: {width}×{height}"
    );
    let extracted = pdf_text(&pdf.output)?;
    ensure!(
        extracted.contains("line number 1\n") && extracted.contains("line number 200"),
        "every line is there"
    );

    let bad = cli.convert(&txt, "pdf", &["font_size=0"])?;
    ensure!(
        !bad.success && bad.stderr.contains("invalid_options") && bad.stderr.contains("font_size"),
        "{}",
        bad.stderr
    );
    Ok(())
}

#[test]
fn pdf_pages_are_kept_removed_and_extracted_as_text() -> Result<()> {
    let cli = Cli::with_plugins(&[DOCUMENT])?;
    let paper = corpus("document/pdf-multipage-14.pdf");
    ensure!(pdf_pages(&paper)?.0 == 14);

    let kept = cli.convert(&paper, "pdf", &["pages=1-3,5,13-"])?;
    ensure!(kept.success, "{}", kept.stderr);
    ensure!(pdf_pages(&kept.output)?.0 == 6, "1-3, 5, 13 and 14");
    let removed = cli.convert(&paper, "pdf", &["remove=2-14"])?;
    ensure!(removed.success, "{}", removed.stderr);
    ensure!(pdf_pages(&removed.output)?.0 == 1);
    // The page left is the first one: its text is the original first page's.
    let first = tempfile::NamedTempFile::new()?;
    let status = Command::new("pdftotext")
        .args(["-f", "1", "-l", "1"])
        .arg(&paper)
        .arg(first.path())
        .status()?;
    ensure!(status.success());
    let expected = words(&std::fs::read_to_string(first.path())?);
    let got = words(&pdf_text(&removed.output)?);
    ensure!(got == expected, "the kept page is page 1");

    for (options, fragment) in [
        (&["pages=20"][..], "14"),
        (&["pages=3-1"][..], "3-1"),
        (&["pages=1", "remove=2"][..], "not both"),
        (&["pages=abc"][..], "abc"),
    ] {
        let run = cli.convert(&paper, "pdf", options)?;
        ensure!(
            !run.success && run.stderr.contains("invalid_options") && run.stderr.contains(fragment),
            "{options:?}: {}",
            run.stderr
        );
    }

    // pdf → txt finds the words poppler finds, page 2 alone too.
    let text = cli.convert(&paper, "txt", &[])?;
    ensure!(text.success, "{}", text.stderr);
    let ours = words(&std::fs::read_to_string(&text.output)?);
    let poppler = words(&pdf_text(&paper)?);
    let found = poppler.iter().filter(|word| ours.contains(word)).count();
    ensure!(
        found * 10 >= poppler.len() * 9,
        "{found} of poppler's {} words were extracted",
        poppler.len()
    );
    let page_two = cli.convert(&paper, "txt", &["pages=2"])?;
    ensure!(page_two.success, "{}", page_two.stderr);
    let page_two = std::fs::read_to_string(&page_two.output)?;
    ensure!(
        !page_two.is_empty() && page_two.len() * 5 < std::fs::read(&text.output)?.len(),
        "one page is a small part of the text"
    );
    Ok(())
}

#[test]
fn images_become_one_pdf_page_each_and_other_formats_are_chained() -> Result<()> {
    let cli = Cli::with_plugins(&[IMAGE, DOCUMENT])?;
    for file in ["image/png-rgba-alpha.png", "image/jpeg-exif-gps.jpg"] {
        let input = corpus(file);
        let (_, w, h) = super::plugins::identify(&input)?;
        let run = cli.convert(&input, "pdf", &[])?;
        ensure!(run.success, "{file}: {}", run.stderr);
        ensure!(
            !run.stderr.contains("step 1/2"),
            "{file} converts in one step"
        );
        let (pages, pw, ph) = pdf_pages(&run.output)?;
        ensure!(pages == 1, "{file}: {pages} pages");
        // Without a resolution recorded, one pixel is one point.
        ensure!(
            pw > 0.0 && ((pw / ph) - f64::from(w) / f64::from(h)).abs() < 0.02,
            "{file}: page {pw}×{ph} for an image of {w}×{h}"
        );
        let a4 = cli.convert(&input, "pdf", &["page_size=a4", "margin=36"])?;
        ensure!(a4.success, "{}", a4.stderr);
        let (_, aw, ah) = pdf_pages(&a4.output)?;
        ensure!(
            (aw.min(ah) - 595.3).abs() < 1.0 && (aw.max(ah) - 841.9).abs() < 1.0,
            "A4: {aw}×{ah}"
        );
    }

    // No plugin turns TIFF, WebP or BMP into PDF: the planner goes through PNG.
    for file in [
        "image/tiff-rgb.tif",
        "image/webp-lossy.webp",
        "image/bmp-rgb24.bmp",
    ] {
        let run = cli.convert(&corpus(file), "pdf", &[])?;
        ensure!(run.success, "{file}: {}", run.stderr);
        ensure!(
            run.stderr.contains("step 1/2") && run.stderr.contains("→ png (image)"),
            "{file}: {}",
            run.stderr
        );
        ensure!(
            run.stderr.contains("step 2/2") && run.stderr.contains("png → pdf (document)"),
            "{file}: {}",
            run.stderr
        );
        ensure!(pdf_pages(&run.output)?.0 == 1, "{file}");
    }
    // Options go to the step they belong to: `page_size` to the document plugin, `width` to
    // the image plugin (a 64-pixel-wide image fills a page 64 points wide).
    let run = cli.convert(
        &corpus("image/tiff-rgb.tif"),
        "pdf",
        &["width=64", "margin=0"],
    )?;
    ensure!(run.success, "{}", run.stderr);
    let (_, width, _) = pdf_pages(&run.output)?;
    ensure!((width - 64.0).abs() < 0.5, "page width {width}");
    Ok(())
}

#[test]
fn multi_step_routes_are_listed_with_their_steps() -> Result<()> {
    let server = Server::builder(Backend::Sqlite)
        .plugins(&[IMAGE, DOCUMENT])
        .start()?;
    let index = server.expect("GET", "/api/convert/formats", &Auth::None, None, 200)?;
    let routes = index["routes"].as_array().context("routes")?;
    let route = routes
        .iter()
        .find(|route| route["source"] == "tif" && route["target"] == "pdf")
        .with_context(|| format!("tif → pdf is a route: {routes:?}"))?;
    let steps: Vec<(&str, &str, &str)> = route["steps"]
        .as_array()
        .context("steps")?
        .iter()
        .map(|step| {
            (
                step["plugin"].as_str().unwrap_or(""),
                step["source"].as_str().unwrap_or(""),
                step["target"].as_str().unwrap_or(""),
            )
        })
        .collect();
    ensure!(
        steps == [("image", "tif", "png"), ("document", "png", "pdf")],
        "{steps:?}"
    );
    // A pair one plugin serves is a pair, not a route.
    ensure!(
        !routes
            .iter()
            .any(|route| route["source"] == "png" && route["target"] == "pdf"),
        "png → pdf is one step"
    );
    let pdf = server.expect("GET", "/api/formats/pdf", &Auth::None, None, 200)?;
    ensure!(
        pdf["converts_from"]
            .as_array()
            .is_some_and(|from| from.iter().any(|f| f == "png")),
        "{pdf}"
    );

    // The document plugin's templates are real files.
    let scratch = tempfile::tempdir()?;
    let template = scratch.path().join("example.pdf");
    let response = server.get("/api/formats/pdf/template")?;
    ensure!(response.status() == 200);
    std::fs::write(&template, response.bytes()?)?;
    ensure!(pdf_pages(&template)?.0 >= 1);
    Ok(())
}

#[test]
fn broken_and_encrypted_pdfs_fail_typed() -> Result<()> {
    let cli = Cli::with_plugins(&[DOCUMENT])?;
    for file in [
        "malformed/pdf-bad-xref.pdf",
        "malformed/pdf-trailer-loop.pdf",
        "document/pdf-encrypted-aes256.pdf",
    ] {
        for target in ["txt", "pdf"] {
            let run = cli.convert(&corpus(file), target, &["pages=1"])?;
            // A damaged cross-reference table is rebuilt, as PDF readers do; otherwise the
            // error is typed.
            if run.success {
                if target == "pdf" {
                    pdf_pages(&run.output)?;
                }
                continue;
            }
            ensure!(
                run.stderr.contains("malformed_input") || run.stderr.contains("unsupported"),
                "{file} → {target}: {}",
                run.stderr
            );
        }
    }
    let fake = cli.scratch().join("fake.pdf");
    std::fs::write(&fake, b"%PDF-1.7\nnothing else")?;
    let run = cli.convert(&fake, "txt", &[])?;
    ensure!(
        !run.success && run.stderr.contains("malformed_input"),
        "{}",
        run.stderr
    );
    Ok(())
}
