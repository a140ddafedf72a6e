//! `GET /public/{project}/changelog` (HTML, or JSON when asked) and `…/changelog.rss` (RSS 2.0).
//! `{project}` is the project's slug or id. Only published entries appear.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use canopy_services::knowledge::changelog::PublicChangelog;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::AppState;
use crate::error::ApiError;

pub async fn page(
    State(st): State<AppState>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let log = st.svc.public_changelog(&project).await?;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept
        .split(',')
        .next()
        .is_some_and(|t| t.trim().starts_with("application/json"))
    {
        return Ok(Json(log).into_response());
    }
    Ok(Html(render_html(&log)).into_response())
}

pub async fn rss(
    State(st): State<AppState>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let log = st.svc.public_changelog(&project).await?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = st
        .http
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{host}"));
    let link = format!(
        "{}/public/{}/changelog",
        base.trim_end_matches('/'),
        log.project.slug
    );
    Ok((
        [(header::CONTENT_TYPE, "application/rss+xml; charset=utf-8")],
        render_rss(&log, &link),
    )
        .into_response())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn rfc2822(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&Rfc2822).ok())
        .unwrap_or_default()
}

fn render_html(log: &PublicChangelog) -> String {
    let mut h = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0} changelog</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"alternate\" type=\"application/rss+xml\" href=\"changelog.rss\">\
         <style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}\
         .c{{font-size:.75rem;text-transform:uppercase;letter-spacing:.05em;padding:.1rem .4rem;border-radius:3px;background:#eef}}\
         time{{color:#666;font-size:.85rem}}article{{border-bottom:1px solid #eee;padding:1rem 0}}pre{{white-space:pre-wrap}}</style>\
         </head><body><h1>{0} changelog</h1>",
        esc(&log.project.name)
    );
    if log.entries.is_empty() {
        h.push_str("<p>Nothing published yet.</p>");
    }
    for e in &log.entries {
        h.push_str(&format!(
            "<article id=\"{}\"><span class=\"c\">{}</span> <time datetime=\"{2}\">{2}</time>{3}<h2>{4}</h2><pre>{5}</pre></article>",
            esc(&e.id),
            esc(&e.category),
            esc(&e.published_at),
            e.version.as_deref().map(|v| format!(" · <b>{}</b>", esc(v))).unwrap_or_default(),
            esc(&e.title),
            esc(&e.body)
        ));
    }
    h.push_str("</body></html>");
    h
}

fn render_rss(log: &PublicChangelog, link: &str) -> String {
    let mut x =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>");
    x.push_str(&format!(
        "<title>{} changelog</title><link>{}</link><description>Changes to {}</description>",
        esc(&log.project.name),
        esc(link),
        esc(&log.project.name)
    ));
    if let Some(first) = log.entries.first() {
        x.push_str(&format!(
            "<lastBuildDate>{}</lastBuildDate>",
            rfc2822(first.published_ms)
        ));
    }
    for e in &log.entries {
        let title = match &e.version {
            Some(v) => format!("[{v}] {}", e.title),
            None => e.title.clone(),
        };
        x.push_str(&format!(
            "<item><title>{}</title><link>{}#{}</link><guid isPermaLink=\"false\">{}</guid><pubDate>{}</pubDate><category>{}</category><description>{}</description></item>",
            esc(&title),
            esc(link),
            esc(&e.id),
            esc(&e.id),
            rfc2822(e.published_ms),
            esc(&e.category),
            esc(&e.body)
        ));
    }
    x.push_str("</channel></rss>\n");
    x
}
