//! `GET /` on the admin listener: a page for the operator. It draws the app as a graph
//! (a box per module with its placement, grants and key limits; an arrow per link,
//! labelled with the interfaces and versions; [`graph`]) and lists per module its
//! generation, component hash, state, health, instances and call rate, and per key-value
//! bucket what it holds against its limits.
//!
//! Everything is made here, on the server: the SVG, the table with the values of the
//! moment, and a small inline script ([`SCRIPT`]) that polls `GET /status` every second to
//! keep the cells and the boxes' status lines current, and that shows a "Roll back" button
//! for a module on probation (`POST /rollback/<module>`, see [`super::control`]). Nothing is
//! loaded from elsewhere: no scripts, fonts, images or style sheets. The
//! Content-Security-Policy allows exactly this page's own script and style (by their
//! SHA-256) and requests to the listener itself, so even a name that escaped [`markup`]'s
//! escaping could not run code.

mod graph;
mod layout;
mod markup;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use http::{HeaderValue, Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::service::{Response, text};
use crate::status::ModuleStatus;
use crate::supervisor::Health;
use crate::upgrade::report::{GenerationState, LastUpgrade};
use markup::escape;

/// The page's script: polls `/status`, fills the cells, offers rollbacks.
const SCRIPT: &str = include_str!("page/page.js");
/// The page's style sheet.
const STYLE: &str = include_str!("page/page.css");
/// What a value the page does not have shows as.
const DASH: &str = "–";

/// Answers `GET /` (and `HEAD /`) with the page; other methods get 405.
pub(crate) fn handle(app: &App, method: &Method, token: &str) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        resp.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let mut resp = text(StatusCode::OK, render(app, token));
    let headers = resp.headers_mut();
    // The page carries the admin token: no cache may keep it.
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(policy()) {
        headers.insert(http::header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    resp
}

/// The Content-Security-Policy: nothing but this page's own inline script and style, the
/// listener itself for `fetch`, and no framing (which also rules out clickjacking the
/// rollback button).
fn policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let hash = |text: &str| format!("'sha256-{}'", base64(&Sha256::digest(text.as_bytes())));
        format!(
            "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src data:; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash(SCRIPT),
            hash(STYLE)
        )
    })
}

/// Standard base64 with padding, as CSP hash sources are written.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The whole page.
fn render(app: &App, token: &str) -> String {
    let status = app.status();
    let title = app
        .manifest_path()
        .and_then(|p| p.canonicalize().ok().or_else(|| Some(p.to_path_buf())))
        .and_then(|p| Some(p.parent()?.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".to_string());
    let manifest = app
        .manifest_path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "declared in code".to_string());
    let modules = app.modules().count();
    let links = app.links().len();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut out = String::with_capacity(16 << 10);
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · membrane</title>
<meta name="membrane-admin-token" content="{token}">
<link rel="icon" href="data:,">
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>membrane <span class="app">{title}</span></h1>
<p class="meta"><span class="mono">{manifest}</span> · {modules} · {links}</p>
<p id="live" data-polls="0">snapshot; live updates need JavaScript</p>
</header>
<main>
<section aria-labelledby="graph-title">
<h2 id="graph-title">Modules and links <small>(arrows go from importer to provider)</small></h2>
{svg}
</section>
<section aria-labelledby="table-title">
<h2 id="table-title">Generations and health</h2>
{table}
<p id="message" role="status" aria-live="polite"></p>
</section>
{buckets}</main>
<script>{SCRIPT}</script>
</body>
</html>
"#,
        title = escape(&title),
        token = escape(token),
        manifest = escape(&manifest),
        modules = plural(modules, "module", "modules"),
        links = plural(links, "link", "links"),
        svg = graph::svg(app, &status),
        table = table(app, &status),
        buckets = buckets(app),
    );
    out
}

/// The app's key-value buckets, with their limits; what each holds is filled by the
/// script from `/status` (asking the store takes a round trip on NATS). None: nothing.
fn buckets(app: &App) -> String {
    let declared = app.declared_buckets();
    if declared.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<section aria-labelledby=\"buckets-title\">\n<h2 id=\"buckets-title\">Key-value buckets</h2>\n\
         <table>\n<thead><tr><th>bucket</th><th>keys</th><th>bytes</th><th>quota</th>\
         <th>most keys</th><th>largest value</th></tr></thead>\n<tbody>\n",
    );
    let bound = |v: Option<u64>, f: &dyn Fn(u64) -> String| v.map_or("no bound".to_string(), f);
    for (name, b) in &declared {
        let _ = writeln!(
            out,
            r#"<tr data-bucket="{name}"><th scope="row" class="mono">{name}</th><td class="num" data-field="keys">{DASH}</td><td class="num" data-field="bytes">{DASH}</td><td class="num">{quota}</td><td class="num">{keys}</td><td class="num">{value}</td></tr>"#,
            name = escape(name),
            quota = bound(b.quota, &membrane_core::format_size),
            keys = bound(b.keys, &|k| k.to_string()),
            value = membrane_core::format_size(b.value_limit()),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    out
}

/// The table of modules, with the values of the moment (the script keeps them current).
fn table(app: &App, status: &BTreeMap<String, ModuleStatus>) -> String {
    let mut out = String::from(
        "<table>\n<thead><tr><th>module</th><th>routes</th><th>generation</th><th>component</th>\
         <th>state</th><th>health</th><th>busy / idle</th><th>calls</th><th>calls/s</th>\
         <th>last minute</th><th>quotas</th><th>last upgrade</th><th></th></tr></thead>\n<tbody>\n",
    );
    for name in app.modules() {
        let s = status.get(name);
        let cell = |f: &dyn Fn(&ModuleStatus) -> String| s.map_or(DASH.to_string(), f);
        let (hash_short, hash_full) = s.map_or((DASH.to_string(), String::new()), |s| {
            (short_hash(&s.hash), format!("sha256:{}", s.hash))
        });
        let upgrade = s
            .and_then(|s| s.last_upgrade.as_ref())
            .map_or(DASH.to_string(), last_upgrade);
        let probation = s.is_some_and(|s| matches!(s.state, GenerationState::Probation { .. }));
        let failing = s.is_some_and(ModuleStatus::failing);
        let _ = writeln!(
            out,
            r#"<tr data-module="{name}"{failing_row}><th scope="row" class="mono">{name}</th><td class="mono" data-field="routes">{routes}</td><td class="num" data-field="generation">{generation}</td><td class="mono" data-field="hash" title="{hash_full}">{hash_short}</td><td data-field="state"{state_class}>{state}</td><td data-field="health"{failing_cell}>{health}</td><td class="num" data-field="load">{load}</td><td class="num" data-field="calls">{calls}</td><td class="num" data-field="rate">{DASH}</td><td class="wrap" data-field="recent">{recent}</td><td class="wrap" data-field="quotas">{quotas}</td><td class="upgrade" data-field="upgrade">{upgrade}</td><td><button type="button" data-rollback{hidden}>Roll back</button></td></tr>"#,
            name = escape(name),
            failing_row = if failing { r#" class="failing""# } else { "" },
            failing_cell = if failing { r#" class="failing""# } else { "" },
            routes = escape(&cell(&routes)),
            recent = escape(&cell(&recent)),
            quotas = escape(&cell(&quotas)),
            generation = cell(&|s| s.generation.to_string()),
            hash_full = escape(&hash_full),
            hash_short = escape(&hash_short),
            state_class = if probation {
                r#" class="probation""#
            } else {
                ""
            },
            state = escape(&cell(&state)),
            health = escape(&cell(&health)),
            load = escape(&cell(&load)),
            calls = cell(&|s| s.calls.to_string()),
            upgrade = escape(&upgrade),
            hidden = if probation { "" } else { " hidden" },
        );
    }
    out.push_str("</tbody>\n</table>");
    out
}

// The cells' texts, as the script writes them from /status.

fn short_hash(hex: &str) -> String {
    if hex.len() > 12 && hex.is_ascii() {
        format!("sha256:{}…", &hex[..12])
    } else {
        format!("sha256:{hex}")
    }
}

fn seconds(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms >= 10_000 {
        format!("{} s", (ms as f64 / 1000.0).round())
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn state(s: &ModuleStatus) -> String {
    let mut out = s.state.as_str().to_string();
    if let GenerationState::Probation { left } = s.state {
        let _ = write!(out, ", {} left", seconds(left));
    }
    if s.draining > 0 {
        let _ = write!(out, " · {} draining", s.draining);
    }
    out
}

fn health(s: &ModuleStatus) -> String {
    let mut out = if s.failing() && matches!(s.health, Health::Healthy) {
        "failing".to_string()
    } else {
        graph::health(&s.health).to_string()
    };
    if let Health::Unavailable { retry_in } = s.health {
        let _ = write!(out, ", retry in {}", seconds(retry_in));
    }
    match s.recent_failures {
        0 => {}
        1 => out.push_str(" · 1 failure"),
        n => {
            let _ = write!(out, " · {n} failures");
        }
    }
    out
}

/// The routes that go to the module, and whether it is the entry.
fn routes(s: &ModuleStatus) -> String {
    let mut parts = s.routes.clone();
    if s.entry {
        parts.push("entry".into());
    }
    if parts.is_empty() {
        DASH.to_string()
    } else {
        parts.join(" ")
    }
}

fn millis(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// The last minute: calls, failures by kind, p50 and p99.
fn recent(s: &ModuleStatus) -> String {
    let r = &s.recent;
    if r.calls == 0 {
        return "no calls".to_string();
    }
    let failed: u64 = r.failures.iter().map(|(_, n)| n).sum();
    let mut out = format!("{} call{}", r.calls, if r.calls == 1 { "" } else { "s" });
    if failed > 0 {
        let kinds: Vec<String> = r.failures.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = write!(
            out,
            ", {:.0}% failed ({})",
            failed as f64 * 100.0 / r.calls as f64,
            kinds.join(", ")
        );
    }
    if let (Some(p50), Some(p99)) = (r.p50, r.p99) {
        let _ = write!(out, " · p50 ≤ {} · p99 ≤ {}", millis(p50), millis(p99));
    }
    out
}

/// Each disk quota: what it holds of its limits.
fn quotas(s: &ModuleStatus) -> String {
    if s.quotas.is_empty() {
        return DASH.to_string();
    }
    let parts: Vec<String> = s
        .quotas
        .iter()
        .map(|q| {
            let mut limits = Vec::new();
            if let Some(b) = q.max_bytes {
                let used = q
                    .used
                    .map_or("?".to_string(), |u| membrane_core::format_size(u.0));
                limits.push(format!("{used} of {}", membrane_core::format_size(b)));
            }
            if let Some(f) = q.max_files {
                let used = q.used.map_or("?".to_string(), |u| u.1.to_string());
                limits.push(format!("{used} of {f} files"));
            }
            format!("{}: {}", q.guest, limits.join(", "))
        })
        .collect();
    parts.join("; ")
}

fn load(s: &ModuleStatus) -> String {
    let mut out = format!("{} / {}", s.busy, s.idle);
    if s.waiting > 0 {
        let _ = write!(out, " · {} waiting", s.waiting);
    }
    out
}

fn last_upgrade(u: &LastUpgrade) -> String {
    format!(
        "{} → {}{}{}",
        u.from,
        u.to,
        if u.ok { ": " } else { " failed: " },
        u.message
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_in_rfc_4648() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    #[test]
    fn the_policy_allows_only_the_page_itself() {
        let p = policy();
        assert!(
            p.starts_with("default-src 'none'; script-src 'sha256-"),
            "{p}"
        );
        assert!(!p.contains("unsafe"), "{p}");
        assert!(!p.contains("http"), "{p}");
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for text in [SCRIPT, STYLE] {
            assert!(!text.contains("http://") && !text.contains("https://"));
            assert!(!text.contains("@import") && !text.contains("url("));
        }
        // Inline code ends where the HTML parser thinks it does.
        assert!(!SCRIPT.contains("</"));
        assert!(!STYLE.contains("</"));
    }
}
