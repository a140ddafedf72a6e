//! Minolith documents and styleguide assets (issue 3 §5–6, §8): multipart and base64 uploads,
//! type from content, extraction into search, byte-identical downloads, hostile files, limits,
//! quotas and isolation.

use std::io::Write;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::both;
use crate::harness::{Backend, TestApp, assert_error, split};

/// A multipart upload to `path` with `file` and text fields.
async fn upload(
    app: &TestApp,
    path: &str,
    key: &str,
    file: Vec<u8>,
    filename: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = Form::new().part("file", Part::bytes(file).file_name(filename.to_owned()));
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    split(
        app.raw()
            .post(app.url(path))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn doc(
    app: &TestApp,
    key: &str,
    file: Vec<u8>,
    name: &str,
    title: &str,
) -> (StatusCode, Value) {
    upload(app, "/v1/documents", key, file, name, &[("title", title)]).await
}

async fn count(app: &TestApp, key: &str) -> usize {
    let (s, l) = app.get("/v1/documents?limit=100", key).await;
    assert_eq!(s, StatusCode::OK, "{l}");
    l["data"].as_array().unwrap().len()
}

async fn search(app: &TestApp, key: &str, q: &str) -> Vec<String> {
    let (s, l) = app.get(&format!("/v1/documents?search={q}"), key).await;
    assert_eq!(s, StatusCode::OK, "{l}");
    l["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap().to_owned())
        .collect()
}

/// A minimal DOCX whose body says `text`.
fn docx(text: &str) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file("[Content_Types].xml", opts).unwrap();
        z.write_all(br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#).unwrap();
        z.start_file("word/document.xml", opts).unwrap();
        write!(z, r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"#).unwrap();
        z.finish().unwrap();
    }
    buf.into_inner()
}

/// A zip with one entry inflating to 200 MiB of spaces: a DOCX when `office`, else a plain zip.
fn zip_bomb(office: bool) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        if office {
            z.start_file("[Content_Types].xml", opts).unwrap();
            z.write_all(b"<Types/>").unwrap();
        }
        z.start_file(
            if office {
                "word/document.xml"
            } else {
                "spaces.txt"
            },
            opts,
        )
        .unwrap();
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..200 {
            z.write_all(&chunk).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

/// A one-page PDF showing `text` in Helvetica, with a correct cross-reference table.
fn pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        out.extend(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// The smallest valid PNG (1×1, grey).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3A, 0x7E, 0x9B,
    0x55, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x60, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x01, 0xE5, 0x27, 0xDE, 0xFC, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

both!(document_round_trip, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let body = b"# Deploy notes\n\nRoll back with the blue-green switch.\n".to_vec();
    let (s, d) = upload(
        &app,
        "/v1/documents",
        &k,
        body.clone(),
        "notes.md",
        &[
            ("title", "Runbook"),
            ("description", "How we ship"),
            ("priority", "high"),
            ("scope", "ops-team"),
            ("tags", r#"["Deploy", "ops"]"#),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let d = &d["data"];
    let id = d["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("doc_"), "{d}");
    assert_eq!(d["mime_type"], "text/markdown");
    assert_eq!(d["size_bytes"], body.len());
    assert_eq!(d["filename"], "notes.md");
    assert_eq!(d["tags"], json!(["deploy", "ops"]));
    assert_eq!(d["priority"], "high");
    assert_eq!(d["text_status"], "extracted");
    assert_eq!(d["download_url"], format!("/v1/documents/{id}/download"));
    assert_eq!(d["sha256"].as_str().unwrap().len(), 64);
    assert!(
        d.get("content").is_none() && d.get("text").is_none(),
        "metadata only: {d}"
    );

    // The extracted text is searchable; a title match ranks above a text match.
    let (s, _) = doc(
        &app,
        &k,
        b"nothing to see".to_vec(),
        "x.txt",
        "Blue-green rollout",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        search(&app, &k, "blue").await,
        vec!["Blue-green rollout", "Runbook"]
    );
    assert_eq!(search(&app, &k, "switch").await, vec!["Runbook"]);
    let (_, l) = app.get("/v1/documents?tags=deploy&priority=high", &k).await;
    assert_eq!(l["data"].as_array().unwrap().len(), 1, "{l}");
    let (_, l) = app.get("/v1/documents?mime_type=text/plain", &k).await;
    assert_eq!(l["data"][0]["title"], "Blue-green rollout", "{l}");

    // Download is byte-identical and never rendered inline.
    let res = app
        .raw()
        .get(app.url(&format!("/v1/documents/{id}/download")))
        .bearer_auth(&k)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "text/markdown");
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"notes.md\"")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(res.bytes().await.unwrap().to_vec(), body);

    // Metadata changes; the file stays.
    let (s, p) = app
        .patch(
            &format!("/v1/documents/{id}"),
            &k,
            json!({"title": "Deploy runbook", "tags": []}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["data"]["title"], "Deploy runbook");
    assert_eq!(p["data"]["sha256"], d["sha256"]);
    let (s, b) = app
        .patch(
            &format!("/v1/documents/{id}"),
            &k,
            json!({"scope": "Not A Slug"}),
        )
        .await;
    assert_error(s, &b, 422, "validation_error");
    assert_eq!(b["error"]["field"], "scope");
    let (s, b) = app
        .patch(
            &format!("/v1/documents/{id}"),
            &k,
            json!({"priority": "hgih"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_type");
    assert_eq!(b["error"]["suggestion"], "Did you mean 'high'?");
    assert_eq!(
        app.get(&format!("/v1/documents/{id}"), &k).await.1["data"]["title"],
        "Deploy runbook"
    );

    // Delete removes the row, the search entry and the file.
    let (s, del) = app.delete(&format!("/v1/documents/{id}"), &k).await;
    assert_eq!(s, StatusCode::OK, "{del}");
    assert_eq!(del["data"], json!({"id": id, "deleted": true}));
    assert_eq!(
        app.get(&format!("/v1/documents/{id}"), &k).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/v1/documents/{id}/download"), &k).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(search(&app, &k, "switch").await.is_empty());
    assert_eq!(count(&app, &k).await, 1);
});

both!(
    office_pdf_and_json_uploads_are_extracted,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        // Named .bin: the type comes from the content.
        let (s, d) = doc(
            &app,
            &k,
            docx("Quarterly kumquat forecast"),
            "report.bin",
            "Report",
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        assert_eq!(
            d["data"]["mime_type"],
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        let (s, d) = doc(
            &app,
            &k,
            pdf("Invoice for persimmon crates"),
            "invoice.pdf",
            "Invoice",
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        assert_eq!(d["data"]["mime_type"], "application/pdf");
        let (s, d) = doc(
            &app,
            &k,
            b"name,fruit\nann,rambutan\n".to_vec(),
            "list.csv",
            "Sheet",
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        assert_eq!(d["data"]["mime_type"], "text/csv");
        let html = b"<!doctype html><html><head><script>var durian=1</script></head><body><p>Lychee &amp; mango</p></body></html>";
        let (s, d) = doc(&app, &k, html.to_vec(), "page.html", "Page").await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        assert_eq!(d["data"]["mime_type"], "text/html");
        // JSON with base64 content: the same operation MCP calls.
        let (s, d) = app
        .post(
            "/v1/documents",
            &k,
            json!({"title": "Config", "filename": "c.json", "content": "eyJmcnVpdCI6ICJndWF2YSJ9"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        assert_eq!(d["data"]["mime_type"], "application/json");
        let (s, d) = doc(&app, &k, PNG.to_vec(), "dot.png", "Dot").await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        assert_eq!(d["data"]["mime_type"], "image/png");
        assert_eq!(d["data"]["text_status"], "none");

        assert_eq!(search(&app, &k, "kumquat").await, vec!["Report"]);
        assert_eq!(search(&app, &k, "persimmon").await, vec!["Invoice"]);
        assert_eq!(search(&app, &k, "rambutan").await, vec!["Sheet"]);
        assert_eq!(search(&app, &k, "lychee").await, vec!["Page"]);
        assert!(
            search(&app, &k, "durian").await.is_empty(),
            "scripts are not text"
        );
        assert_eq!(search(&app, &k, "guava").await, vec!["Config"]);
    }
);

both!(
    hostile_and_invalid_uploads_change_nothing,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        let blobs = app.settings.data_dir.join("blobs");
        let refused: Vec<(Vec<u8>, &str, &str)> = vec![
            (
                b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00".to_vec(),
                "tool",
                "ELF executable",
            ),
            (
                b"MZ\x90\x00\x03\x00\x00\x00\x04\x00".to_vec(),
                "setup.exe",
                "Windows executable",
            ),
            (b"#!/bin/sh\nrm -rf /\n".to_vec(), "notes.txt", "script"),
            (
                b"%PDF-1.7\n\x00\x01garbage that is not a PDF at all\n".to_vec(),
                "broken.pdf",
                "malformed PDF",
            ),
            (zip_bomb(true), "bomb.docx", "DOCX zip bomb"),
            (zip_bomb(false), "bomb.zip", "zip bomb"),
        ];
        for (bytes, name, what) in refused {
            let started = std::time::Instant::now();
            let (s, b) = doc(&app, &k, bytes, name, what).await;
            assert_error(s, &b, 422, "validation_error");
            assert_eq!(b["error"]["field"], "file", "{what}: {b}");
            assert!(
                started.elapsed().as_secs() < 30,
                "{what} took {:?}",
                started.elapsed()
            );
        }
        // Missing file, missing title, bad tags, empty file.
        let form = Form::new().text("title", "no file");
        let (s, b) = split(
            app.raw()
                .post(app.url("/v1/documents"))
                .bearer_auth(&k)
                .multipart(form)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_error(s, &b, 422, "validation_error");
        assert_eq!(b["error"]["field"], "file");
        let (s, b) = upload(&app, "/v1/documents", &k, b"hi".to_vec(), "a.txt", &[]).await;
        assert_error(s, &b, 422, "validation_error");
        assert_eq!(b["error"]["field"], "title");
        let (s, b) = upload(
            &app,
            "/v1/documents",
            &k,
            b"hi".to_vec(),
            "a.txt",
            &[("title", "t"), ("tags", "not json")],
        )
        .await;
        assert_error(s, &b, 422, "validation_error");
        assert_eq!(b["error"]["field"], "tags");
        let (s, b) = doc(&app, &k, Vec::new(), "empty.txt", "Empty").await;
        assert_error(s, &b, 422, "validation_error");
        // Nothing was written: no rows, no files.
        assert_eq!(count(&app, &k).await, 0);
        let files = walk(&blobs);
        assert!(files.is_empty(), "blobs left behind: {files:?}");
        // The server is still well.
        let (s, _) = doc(&app, &k, b"fine".to_vec(), "ok.txt", "Fine").await;
        assert_eq!(s, StatusCode::CREATED);
    }
);

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limits_and_quotas_refuse_uploads() {
    let app = TestApp::start(Backend::Sqlite, |s| {
        s.rate_limit_per_minute = 100_000;
        s.max_document_bytes = 1024;
        s.quotas.insert("documents".into(), 2);
        s.quotas.insert("storage_bytes".into(), 1500);
    })
    .await
    .unwrap();
    let k = app.admin_key.clone();
    let (s, b) = doc(&app, &k, vec![b'a'; 1025], "big.txt", "Big").await;
    assert_error(s, &b, 413, "payload_too_large");
    let (s, b) = app
        .post(
            "/v1/documents",
            &k,
            json!({"title": "Big", "content": "YWFh".repeat(400)}),
        )
        .await;
    assert_error(s, &b, 413, "payload_too_large");
    let (s, _) = doc(&app, &k, vec![b'a'; 1000], "a.txt", "A").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = doc(&app, &k, vec![b'b'; 600], "b.txt", "B").await;
    assert_error(s, &b, 403, "quota_exceeded");
    assert_eq!(b["error"]["quota"], "storage_bytes");
    let (s, _) = doc(&app, &k, vec![b'c'; 100], "c.txt", "C").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = doc(&app, &k, vec![b'd'; 10], "d.txt", "D").await;
    assert_error(s, &b, 403, "quota_exceeded");
    assert_eq!(b["error"]["quota"], "documents");
    assert_eq!(b["error"]["current"], 2);
    assert_eq!(count(&app, &k).await, 2);
    assert_eq!(walk(&app.settings.data_dir.join("blobs")).len(), 2);
}

both!(
    documents_are_isolated_per_project,
    |app: TestApp| async move {
        let (s, a) = doc(
            &app,
            &app.admin_key,
            b"alpha secret".to_vec(),
            "a.txt",
            "A doc",
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        let a_id = a["data"]["id"].as_str().unwrap().to_owned();
        let b_id = app.client("Project B").await;
        let (_, b_key) = app
            .key(&["read", "write"], json!({"project_id": b_id}))
            .await;
        for path in [
            format!("/v1/documents/{a_id}"),
            format!("/v1/documents/{a_id}/download"),
        ] {
            let (s, b) = app.get(&path, &b_key).await;
            assert_error(s, &b, 404, "not_found");
        }
        let (s, _) = app
            .patch(
                &format!("/v1/documents/{a_id}"),
                &b_key,
                json!({"title": "mine"}),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            app.delete(&format!("/v1/documents/{a_id}"), &b_key).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(count(&app, &b_key).await, 0);
        assert!(search(&app, &b_key, "alpha").await.is_empty());
        let (s, _) = doc(&app, &b_key, b"beta".to_vec(), "b.txt", "B doc").await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(count(&app, &app.admin_key).await, 1);
        // A read-only key cannot upload.
        let (_, ro) = app.key(&["read"], json!({})).await;
        let (s, b) = doc(&app, &ro, b"x".to_vec(), "x.txt", "X").await;
        assert_error(s, &b, 403, "forbidden");
    }
);

both!(styleguide_assets_round_trip, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let (s, a) = upload(
        &app,
        "/v1/styleguide/assets",
        &k,
        PNG.to_vec(),
        "logo.png",
        &[("description", "Main logo"), ("tags", r#"["brand"]"#)],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let a = &a["data"];
    let id = a["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sga_"));
    assert_eq!(a["name"], "logo.png");
    assert_eq!(a["mime_type"], "image/png");
    assert_eq!(
        a["download_url"],
        format!("/v1/styleguide/assets/{id}/download")
    );
    let (_, u) = app.get("/v1/usage", &k).await;
    assert_eq!(
        u["data"]["project"]["used"], 3,
        "an asset upload costs 3 credits: {u}"
    );
    let (_, l) = app.get("/v1/styleguide/assets?name=LOGO", &k).await;
    assert_eq!(l["data"].as_array().unwrap().len(), 1, "{l}");
    let (_, l) = app.get("/v1/styleguide/assets?name=%25", &k).await;
    assert_eq!(
        l["data"].as_array().unwrap().len(),
        0,
        "LIKE wildcards are literal: {l}"
    );
    let res = app
        .raw()
        .get(app.url(&format!("/v1/styleguide/assets/{id}/download")))
        .bearer_auth(&k)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);
    let (s, p) = app
        .patch(
            &format!("/v1/styleguide/assets/{id}"),
            &k,
            json!({"name": "Logo"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["data"]["name"], "Logo");
    // Over 5 MB → 413, nothing written, nothing charged.
    let (s, b) = upload(
        &app,
        "/v1/styleguide/assets",
        &k,
        vec![b'a'; 5 * 1024 * 1024 + 1],
        "big.txt",
        &[],
    )
    .await;
    assert_error(s, &b, 413, "payload_too_large");
    let (_, u) = app.get("/v1/usage", &k).await;
    assert_eq!(u["data"]["project"]["used"], 3);
    let (s, _) = app.delete(&format!("/v1/styleguide/assets/{id}"), &k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.get(&format!("/v1/styleguide/assets/{id}"), &k).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(walk(&app.settings.data_dir.join("blobs")).is_empty());
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_survive_a_restart() {
    let mut app = TestApp::sqlite().await;
    let k = app.admin_key.clone();
    let (s, d) = doc(&app, &k, docx("durable words"), "d.docx", "Durable").await;
    assert_eq!(s, StatusCode::CREATED);
    let id = d["data"]["id"].as_str().unwrap().to_owned();
    app.restart().await;
    let res = app
        .raw()
        .get(app.url(&format!("/v1/documents/{id}/download")))
        .bearer_auth(&k)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().to_vec(), docx("durable words"));
    assert_eq!(search(&app, &k, "durable").await, vec!["Durable"]);
}
