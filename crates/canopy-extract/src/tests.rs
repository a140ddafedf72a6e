#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Cursor, Write};
use std::time::{Duration, Instant};

use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use crate::{Kind, Limits, Rejected, extract, sniff};

// ---------------------------------------------------------------- builders

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        // ODF wants its mimetype stored, uncompressed.
        let method = if *name == "mimetype" {
            CompressionMethod::Stored
        } else {
            CompressionMethod::Deflated
        };
        writer
            .start_file(
                *name,
                SimpleFileOptions::default().compression_method(method),
            )
            .unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

const CONTENT_TYPES: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#;

fn docx(body: &str) -> Vec<u8> {
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        ("_rels/.rels", b"<Relationships/>"),
        ("word/document.xml", document.as_bytes()),
    ])
}

fn odf(mimetype: &str, content: &str) -> Vec<u8> {
    zip_of(&[
        ("mimetype", mimetype.as_bytes()),
        ("META-INF/manifest.xml", b"<manifest/>"),
        ("content.xml", content.as_bytes()),
    ])
}

/// A one-page PDF whose content stream is `content`, with correct xref
/// offsets; `filter` is an optional `/Filter` entry for the stream.
fn pdf_with_content(content: &[u8], filter: &str) -> Vec<u8> {
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
        [
            format!("<< /Length {} {filter} >>\nstream\n", content.len()).as_bytes(),
            content,
            b"\nendstream",
        ]
        .concat(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ];
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(object);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn pdf_with_text(text: &str) -> Vec<u8> {
    pdf_with_content(
        format!("BT /F1 24 Tf 72 700 Td ({text}) Tj ET").as_bytes(),
        "",
    )
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn text_of(kind: Kind, bytes: &[u8]) -> String {
    extract(kind, bytes, &Limits::default()).unwrap()
}

// ---------------------------------------------------------------- sniff

#[test]
fn sniffs_binary_kinds_from_magic_numbers() {
    let cases: &[(&[u8], Kind)] = &[
        (b"\x89PNG\r\n\x1A\n\0\0\0\rIHDR", Kind::Png),
        (b"\xFF\xD8\xFF\xE0\0\x10JFIF\0", Kind::Jpeg),
        (b"GIF89a\x01\0\x01\0\0\0\0;", Kind::Gif),
        (b"RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0", Kind::Webp),
        (
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0\0\0\0\0\0\0",
            Kind::Doc,
        ),
        (b"{\\rtf1\\ansi Hello}", Kind::Rtf),
    ];
    for (bytes, kind) in cases {
        assert_eq!(sniff(bytes, None), Ok(*kind), "{kind:?}");
    }
    assert_eq!(
        sniff(&pdf_with_text("Hello PDF"), Some("a.pdf")),
        Ok(Kind::Pdf)
    );
    // The name does not change what binary content is.
    assert_eq!(
        sniff(b"\x89PNG\r\n\x1A\n\0\0", Some("photo.txt")),
        Ok(Kind::Png)
    );
}

#[test]
fn sniffs_office_and_odf_containers_by_entry_names() {
    assert_eq!(sniff(&docx("<w:p/>"), Some("x.zip")), Ok(Kind::Docx));
    let xlsx = zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        ("xl/workbook.xml", b"<workbook/>"),
    ]);
    assert_eq!(sniff(&xlsx, None), Ok(Kind::Xlsx));
    let pptx = zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        ("ppt/presentation.xml", b"<presentation/>"),
    ]);
    assert_eq!(sniff(&pptx, None), Ok(Kind::Pptx));
    let odt = odf("application/vnd.oasis.opendocument.text", "<c/>");
    assert_eq!(sniff(&odt, None), Ok(Kind::Odt));
    let ods = odf("application/vnd.oasis.opendocument.spreadsheet", "<c/>");
    assert_eq!(sniff(&ods, None), Ok(Kind::Ods));
    let odp = odf("application/vnd.oasis.opendocument.presentation", "<c/>");
    assert_eq!(sniff(&odp, None), Ok(Kind::Odp));
    // Word parts without [Content_Types].xml are just a zip.
    let fake = zip_of(&[("word/document.xml", b"<w/>")]);
    assert_eq!(sniff(&fake, Some("a.docx")), Ok(Kind::Zip));
}

#[test]
fn a_zip_holding_executables_is_still_a_zip() {
    let bytes = zip_of(&[("readme.txt", b"hi"), ("setup.exe", b"MZ\x90\0\x03\0\0\0")]);
    assert_eq!(sniff(&bytes, Some("bundle.zip")), Ok(Kind::Zip));
    assert_eq!(text_of(Kind::Zip, &bytes), "");
    assert!(matches!(
        sniff(b"PK\x03\x04garbage", None),
        Err(Rejected::Malformed(_))
    ));
}

#[test]
fn sniffs_text_kinds_from_content() {
    let cases: &[(&str, Option<&str>, Kind)] = &[
        ("just some words\n", None, Kind::Text),
        ("", None, Kind::Text),
        ("\u{FEFF}with a byte order mark", None, Kind::Text),
        ("# Title\n\nSome *text*.\n", None, Kind::Markdown),
        (
            "plain words, no headings\n",
            Some("notes.md"),
            Kind::Markdown,
        ),
        ("# a comment\nkey = value\n", Some("app.conf"), Kind::Text),
        ("a,b,c\n1,2,3\n4,5,6\n", None, Kind::Csv),
        ("name;age\nann;3\n", Some("people.CSV"), Kind::Csv),
        ("one, two\nthree\nfour, five\n", None, Kind::Text),
        (r#"{"a": [1, "x"]}"#, None, Kind::Json),
        ("[1, 2", None, Kind::Text),
        (
            "<!DOCTYPE html><html><body>x</body></html>",
            None,
            Kind::Html,
        ),
        ("  \n<HTML lang=en><p>x</HTML>", None, Kind::Html),
        ("<div>fragment</div>", Some("page.htm"), Kind::Html),
        ("<div>fragment<br></div>", None, Kind::Text),
        (
            "<?xml version=\"1.0\"?>\n<!-- c -->\n<note><to>x</to></note>",
            None,
            Kind::Xml,
        ),
        (
            "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            None,
            Kind::Svg,
        ),
        (
            "<svg width=\"1\"><text>x</text></svg>",
            Some("x.xml"),
            Kind::Svg,
        ),
        ("<3 you", None, Kind::Text),
    ];
    for (text, name, kind) in cases {
        assert_eq!(
            sniff(text.as_bytes(), *name),
            Ok(*kind),
            "{text:?} named {name:?}"
        );
    }
}

#[test]
fn rejects_executables() {
    let elf = b"\x7FELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3E\0";
    assert!(matches!(
        sniff(elf, Some("notes.txt")),
        Err(Rejected::NotAllowed(_))
    ));
    let mut pe = b"MZ\x90\0".to_vec();
    pe.resize(0x40, 0);
    pe[0x3C] = 0x40;
    pe.extend_from_slice(b"PE\0\0\x4C\x01");
    assert!(matches!(
        sniff(&pe, Some("setup.exe")),
        Err(Rejected::NotAllowed(_))
    ));
    assert!(matches!(
        sniff(&pe, Some("report.pdf")),
        Err(Rejected::NotAllowed(_))
    ));
    for bytes in [
        &b"\xCF\xFA\xED\xFE\x07\0\0\x01"[..],
        b"\xCA\xFE\xBA\xBE\0\0\0\x34",
        b"\0asm\x01\0\0\0",
        b"dex\n035\0",
        b"\x1F\x8B\x08\0\0\0\0\0",
        b"\0\x01\x02\x03 unknown",
    ] {
        assert!(
            matches!(sniff(bytes, None), Err(Rejected::NotAllowed(_))),
            "{bytes:?}"
        );
    }
}

#[test]
fn rejects_scripts() {
    assert!(matches!(
        sniff(b"#!/bin/sh\nrm -rf /\n", None),
        Err(Rejected::NotAllowed(_))
    ));
    assert!(matches!(
        sniff(b"#!/usr/bin/env python3\nprint(1)\n", Some("notes.txt")),
        Err(Rejected::NotAllowed(_))
    ));
    assert!(matches!(
        sniff(b"<?php echo 1;", None),
        Err(Rejected::NotAllowed(_))
    ));
    for name in [
        "evil.sh",
        "EVIL.BAT",
        "run.ps1",
        "app.js",
        "dir/x.py",
        "tricky.sh. ",
    ] {
        assert!(
            matches!(
                sniff(b"echo hello\n", Some(name)),
                Err(Rejected::NotAllowed(_))
            ),
            "{name}"
        );
    }
    // The same text under an innocent name is fine.
    assert_eq!(sniff(b"echo hello\n", Some("evil.txt")), Ok(Kind::Text));
}

#[test]
fn kind_names_and_mimes() {
    assert_eq!(Kind::Pdf.as_str(), "pdf");
    assert_eq!(
        Kind::Docx.mime(),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    );
    assert_eq!(Kind::Svg.mime(), "image/svg+xml");
    assert_eq!(Kind::Markdown.as_str(), "markdown");
}

// ---------------------------------------------------------------- extract: documents

#[test]
fn extracts_docx_paragraphs() {
    let bytes = docx(
        "<w:p><w:r><w:t>Hel</w:t></w:r><w:r><w:t xml:space=\"preserve\">lo &amp; </w:t></w:r><w:r><w:tab/><w:t>world</w:t></w:r></w:p>\
         <w:p><w:r><w:t>Second</w:t><w:br/><w:t>line</w:t></w:r></w:p>\
         <w:p><w:r><w:instrText>IGNORED</w:instrText></w:r></w:p>",
    );
    assert_eq!(text_of(Kind::Docx, &bytes), "Hello & \tworld\nSecond\nline");
}

#[test]
fn extracts_pptx_slides_in_order_and_xlsx_shared_strings() {
    let slide = |text: &str| {
        format!(
            "<p:sld xmlns:p=\"p\" xmlns:a=\"a\"><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:sld>"
        )
    };
    let (s1, s2, s10) = (slide("one"), slide("two"), slide("ten"));
    let pptx = zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        ("ppt/slides/slide10.xml", s10.as_bytes()),
        ("ppt/slides/slide2.xml", s2.as_bytes()),
        ("ppt/slides/slide1.xml", s1.as_bytes()),
    ]);
    assert_eq!(text_of(Kind::Pptx, &pptx), "one\ntwo\nten");
    let xlsx = zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        (
            "xl/sharedStrings.xml",
            b"<sst><si><t>Name</t></si><si><r><t>Ann</t></r><r><t>e</t></r></si></sst>",
        ),
    ]);
    assert_eq!(text_of(Kind::Xlsx, &xlsx), "Name\nAnne");
}

#[test]
fn extracts_odf_content() {
    let content = r#"<office:document-content xmlns:office="o" xmlns:text="t"><office:automatic-styles><style>x</style></office:automatic-styles><office:body><office:text><text:h>Title</text:h><text:p>A<text:s/>b<text:tab/>c</text:p></office:text></office:body></office:document-content>"#;
    let odt = odf("application/vnd.oasis.opendocument.text", content);
    assert_eq!(text_of(Kind::Odt, &odt), "Title\nA b\tc");
}

#[test]
fn truncated_docx_is_malformed() {
    let bytes = docx("<w:p><w:r><w:t>Some text that will be cut off</w:t></w:r></w:p>");
    let cut = &bytes[..bytes.len() * 2 / 3];
    assert_eq!(sniff(cut, Some("a.docx")), Ok(Kind::Docx));
    assert!(matches!(
        extract(Kind::Docx, cut, &Limits::default()),
        Err(Rejected::Malformed(_))
    ));
    // A well-formed zip whose XML is cut off is malformed too.
    let broken = zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        (
            "word/document.xml",
            b"<w:document xmlns:w=\"w\"><w:body><w:p><w:t>x",
        ),
    ]);
    assert!(matches!(
        extract(Kind::Docx, &broken, &Limits::default()),
        Err(Rejected::Malformed(_))
    ));
}

#[test]
fn zip_bomb_is_too_large_and_fails_fast() {
    // One entry of 200 MiB of zeros, about 1 MiB compressed.
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1));
    writer.start_file("[Content_Types].xml", deflated).unwrap();
    writer.write_all(CONTENT_TYPES).unwrap();
    writer.start_file("word/document.xml", deflated).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..200 {
        writer.write_all(&zeros).unwrap();
    }
    let mut bomb = writer.finish().unwrap().into_inner();
    assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
    assert_eq!(sniff(&bomb, None), Ok(Kind::Docx));

    let started = Instant::now();
    let result = extract(Kind::Docx, &bomb, &Limits::default());
    assert!(matches!(result, Err(Rejected::TooLarge(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Lie about the inflated size (claim 100 bytes) in both the local header
    // and the central directory: reading must still stop early (the zip crate
    // refuses data past the declared size; our counter would stop it too).
    let claimed = 100u32.to_le_bytes();
    let mut patched = 0;
    for at in 0..bomb.len() - 4 {
        if bomb[at..].starts_with(b"PK\x03\x04")
            && bomb
                .get(at + 30..)
                .is_some_and(|rest| rest.starts_with(b"word/"))
        {
            bomb[at + 22..at + 26].copy_from_slice(&claimed);
            patched += 1;
        }
        if bomb[at..].starts_with(b"PK\x01\x02")
            && bomb
                .get(at + 46..)
                .is_some_and(|rest| rest.starts_with(b"word/"))
        {
            bomb[at + 24..at + 28].copy_from_slice(&claimed);
            patched += 1;
        }
    }
    assert_eq!(patched, 2);
    let started = Instant::now();
    let result = extract(Kind::Docx, &bomb, &Limits::default());
    assert!(
        matches!(result, Err(Rejected::TooLarge(_) | Rejected::Malformed(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn capped_reader_stops_at_the_budget() {
    let bomb = zlib(&vec![0u8; 4 << 20]);
    let mut unpacked = crate::budget::Unpacked::new(1 << 20);
    let deadline = crate::budget::Deadline::after(Duration::from_secs(10));
    let mut decoder = flate2::read::ZlibDecoder::new(&bomb[..]);
    let result = unpacked.read_all(&mut decoder, "bomb", &deadline);
    assert!(matches!(result, Err(Rejected::TooLarge(_))));
    let mut decoder = flate2::read::ZlibDecoder::new(&bomb[..]);
    let mut roomy = crate::budget::Unpacked::new(8 << 20);
    assert_eq!(
        roomy
            .read_all(&mut decoder, "bomb", &deadline)
            .unwrap()
            .len(),
        4 << 20
    );
}

#[test]
fn too_many_zip_entries_is_too_large() {
    let bytes = zip_of(&[("a", b"1"), ("b", b"2"), ("c", b"3")]);
    let limits = Limits {
        max_entries: 2,
        ..Limits::default()
    };
    assert!(matches!(
        extract(Kind::Zip, &bytes, &limits),
        Err(Rejected::TooLarge(_))
    ));
    assert!(extract(Kind::Zip, &bytes, &Limits::default()).is_ok());
}

#[test]
fn an_expired_deadline_is_a_timeout() {
    let limits = Limits {
        timeout: Duration::ZERO,
        ..Limits::default()
    };
    let bytes = docx("<w:p><w:r><w:t>x</w:t></w:r></w:p>");
    assert_eq!(extract(Kind::Docx, &bytes, &limits), Err(Rejected::Timeout));
    assert_eq!(
        extract(Kind::Pdf, &pdf_with_text("x"), &limits),
        Err(Rejected::Timeout)
    );
}

// ---------------------------------------------------------------- extract: PDF

#[test]
fn extracts_pdf_text() {
    let text = text_of(Kind::Pdf, &pdf_with_text("Hello PDF"));
    assert!(text.contains("Hello PDF"), "{text:?}");
}

#[test]
fn extracts_flate_compressed_pdf_text() {
    let content = zlib(b"BT /F1 24 Tf 72 700 Td (Squeezed words) Tj ET");
    let text = text_of(
        Kind::Pdf,
        &pdf_with_content(&content, "/Filter /FlateDecode"),
    );
    assert!(text.contains("Squeezed words"), "{text:?}");
}

#[test]
fn malformed_pdf_is_malformed_not_a_panic_or_hang() {
    let started = Instant::now();
    for bytes in [
        &b"%PDF-1.4\n\x00\x13garbage garbage \xFF\xFE trailer <<>>"[..],
        b"%PDF-1.7",
        &pdf_with_text("Hello PDF")[..200],
    ] {
        let result = extract(Kind::Pdf, bytes, &Limits::default());
        assert!(matches!(result, Err(Rejected::Malformed(_))), "{result:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn pdf_parser_panic_is_malformed() {
    // pdf-extract panics on a font missing from the page resources.
    let bytes = pdf_with_content(b"BT /F9 24 Tf 72 700 Td (x) Tj ET", "");
    let result = extract(Kind::Pdf, &bytes, &Limits::default());
    assert!(
        matches!(&result, Err(Rejected::Malformed(why)) if why.contains("panicked")),
        "{result:?}"
    );
}

#[test]
fn pdf_stream_bomb_is_too_large() {
    let content = zlib(&vec![b' '; 8 << 20]);
    let bytes = pdf_with_content(&content, "/Filter /FlateDecode");
    let limits = Limits {
        max_unpacked_bytes: 1 << 20,
        ..Limits::default()
    };
    assert!(matches!(
        extract(Kind::Pdf, &bytes, &limits),
        Err(Rejected::TooLarge(_))
    ));
}

// ---------------------------------------------------------------- extract: text kinds

#[test]
fn html_drops_script_and_style_and_decodes_entities() {
    let html = r#"<!DOCTYPE html>
<html><head><title>T&amp;C</title><style>body { color: red }</style>
<script type="text/javascript">var secret = "<p>not text</p>";</SCRIPT ></head>
<body><!-- hidden comment --><h1>Caf&eacute; &lt;menu&gt;</h1>
<p>Fish&nbsp;&amp;&#32;chips &#x263A; <b>bold</b>word</p>
<table><tr><td>a</td><td>b</td></tr></table>x < y
<p>x &amp; ünïcödé ünïcödé ünïcödé</p></body></html>"#;
    let text = text_of(Kind::Html, html.as_bytes());
    for gone in ["secret", "color", "not text", "hidden", "<p>", "<b>"] {
        assert!(!text.contains(gone), "{gone} in {text:?}");
    }
    for kept in [
        "T&C",
        "Caf&eacute; <menu>",
        "Fish & chips ☺ boldword",
        "a b",
        "x < y",
        // The `;` of an entity followed by multi-byte text is still found.
        "x & ünïcödé ünïcödé ünïcödé",
    ] {
        assert!(text.contains(kept), "{kept} not in {text:?}");
    }
}

#[test]
fn json_keys_and_strings_are_flattened() {
    let json = br#"{"title": "Report", "tags": ["q1", "sales"], "meta": {"author": "Ann", "pages": 3, "draft": false, "n": null}}"#;
    assert_eq!(
        text_of(Kind::Json, json),
        "title\ntags\nmeta\nReport\nq1\nsales\nauthor\npages\ndraft\nn\nAnn"
    );
    assert!(matches!(
        extract(Kind::Json, b"{\"a\":", &Limits::default()),
        Err(Rejected::Malformed(_))
    ));
}

#[test]
fn xml_and_svg_give_their_text_nodes() {
    let xml = "<?xml version=\"1.0\"?><note><to>Tove</to><from>Jani</from><body>Don't &amp; <![CDATA[<raw>]]></body></note>";
    assert_eq!(
        text_of(Kind::Xml, xml.as_bytes()),
        "Tove Jani Don't & <raw>"
    );
    let svg = "<svg><script>alert(1)</script><style>.a{}</style><text>Label</text></svg>";
    assert_eq!(text_of(Kind::Svg, svg.as_bytes()), "Label");
    // Entities defined in a DTD are not expanded.
    let laughs = "<!DOCTYPE x [<!ENTITY lol \"lol\">]><x>&lol;&lol;ok</x>";
    assert_eq!(text_of(Kind::Xml, laughs.as_bytes()), "ok");
}

#[test]
fn rtf_control_words_are_stripped() {
    let rtf = br"{\rtf1\ansi{\fonttbl{\f0 Times;}}{\colortbl;\red0\green0\blue0;}{\*\generator X;}\f0 Hello \b world\b0\par Caf\'e9 \u8364?5 \u-10179?\u-8704?\par{\pict\bin3 {}}}done}";
    assert_eq!(text_of(Kind::Rtf, rtf), "Hello world\nCafé €5 😀\ndone");
}

#[test]
fn text_is_truncated_at_a_char_boundary() {
    let limits = Limits {
        max_text_bytes: 7,
        ..Limits::default()
    };
    // 'é' is two bytes: 7 bytes cannot end mid-char, so 6 are kept.
    let text = extract(Kind::Text, "éééééééé".as_bytes(), &limits).unwrap();
    assert_eq!(text, "ééé");
    let text = extract(Kind::Markdown, "\u{FEFF}abcdefghij".as_bytes(), &limits).unwrap();
    assert_eq!(text, "abcdefg");
    let html = extract(Kind::Html, "<p>€€€€</p>".as_bytes(), &limits).unwrap();
    assert_eq!(html, "€€");
    let docx = extract(
        Kind::Docx,
        &docx("<w:p><w:r><w:t>ééééé</w:t></w:r></w:p>"),
        &limits,
    )
    .unwrap();
    assert_eq!(docx, "ééé");
}

#[test]
fn images_and_legacy_office_have_no_text() {
    assert_eq!(text_of(Kind::Png, b"\x89PNG\r\n\x1A\n"), "");
    assert_eq!(text_of(Kind::Doc, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"), "");
}

#[test]
fn plain_zip_bomb_is_refused_but_ordinary_zips_pass() {
    let deflated = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1));
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    writer.start_file("zeros.bin", deflated).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..100 {
        writer.write_all(&zeros).unwrap();
    }
    let bomb = writer.finish().unwrap().into_inner();
    assert_eq!(sniff(&bomb, Some("a.zip")), Ok(Kind::Zip));
    let result = extract(Kind::Zip, &bomb, &Limits::default());
    assert!(matches!(result, Err(Rejected::TooLarge(_))), "{result:?}");

    let ordinary = zip_of(&[("notes.txt", b"hello"), ("run.exe", b"MZ")]);
    assert_eq!(
        extract(Kind::Zip, &ordinary, &Limits::default()),
        Ok(String::new())
    );
}
