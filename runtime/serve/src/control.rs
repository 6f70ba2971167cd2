//! The admin listener's changes: `POST /reload` (read the app's manifest again and upgrade
//! what changed, as SIGHUP does; `?grants=accept` accepts wider grants) and `POST /rollback/<module>` (back to the generation kept
//! during probation). Answers are JSON: `{"ok": true, ...}`, or `{"ok": false, "kind",
//! "error", "problems": [...]}` with 422 for a refused upgrade, 409 for a conflict, 404 for
//! an unknown module or nothing to roll back to.
//!
//! A change needs the admin token ([`super::access`]): 401 without it. A browser on the
//! operator's machine must not be turned against the listener by another site either: a
//! request a browser marks as cross-site (`Sec-Fetch-Site`) or whose `Origin` is not the
//! listener itself is refused with 403. Tools (curl, `membrane reload`) send neither.

use http::{HeaderValue, Method, StatusCode};
use hyper::body::Incoming;

use crate::access::Access;
use crate::app::App;
use crate::error::{Error, ErrorKind};
use crate::service::{Response, text};
use crate::upgrade::grants::UpgradeOptions;

/// Answers a change request, or `None` when the request is not one.
pub(crate) async fn handle(
    app: &App,
    access: &Access,
    req: &hyper::Request<Incoming>,
) -> Option<Response> {
    let path = req.uri().path();
    let rollback = path.strip_prefix("/rollback/");
    if path != "/reload" && rollback.is_none() {
        return None;
    }
    if req.method() != Method::POST {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
        resp.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
        return Some(resp);
    }
    if cross_site(req) {
        return Some(text(
            StatusCode::FORBIDDEN,
            "cross-site requests may not change the app\n",
        ));
    }
    if let Some(refused) = access.refuse_change(req) {
        return Some(refused);
    }
    let answer = match rollback {
        Some(module) => app
            .rollback(module)
            .map(|r| serde_json::json!({ "ok": true, "rolled_back": r.to_json() })),
        None => match reload_options(req.uri().query()) {
            Ok(options) => reload(app, options).await,
            Err(e) => Err(e),
        },
    };
    Some(match answer {
        Ok(value) => json(StatusCode::OK, &value),
        Err(e) => failed(&e),
    })
}

/// `?grants=accept` accepts wider grants; nothing else may be asked.
fn reload_options(query: Option<&str>) -> crate::Result<UpgradeOptions> {
    let mut options = UpgradeOptions::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair {
            "grants=accept" => options = options.accept_wider_grants(),
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidArgs,
                    format!(
                        "POST /reload takes only ?grants=accept (to accept wider grants), not {:?}",
                        crate::sanitize::escape(other)
                    ),
                ));
            }
        }
    }
    Ok(options)
}

async fn reload(app: &App, options: UpgradeOptions) -> crate::Result<serde_json::Value> {
    let Some(manifest) = app.manifest_path() else {
        return Err(Error::new(
            ErrorKind::NotFound,
            "the app was not loaded from a manifest, so there is nothing to reload; use App::upgrade",
        ));
    };
    let r = app.reload_with(manifest.to_path_buf(), options).await?;
    let mut answer = r.to_json();
    answer["ok"] = true.into();
    Ok(answer)
}

/// A request a browser sends on behalf of another site.
fn cross_site(req: &hyper::Request<Incoming>) -> bool {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site")
        && site != "same-origin"
        && site != "none"
    {
        return true;
    }
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => {
            let origin = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            origin != host
        }
        (Some(_), None) => true,
        _ => false,
    }
}

fn failed(e: &Error) -> Response {
    let status = match e.kind() {
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidArgs => StatusCode::BAD_REQUEST,
        ErrorKind::HostPanic => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let one = |e: &Error| {
        serde_json::json!({
            "kind": e.kind().as_str(),
            "module": e.module(),
            "key": e.key(),
            "message": crate::error::describe(e),
        })
    };
    let problems: Vec<_> = if e.problems().is_empty() {
        vec![one(e)]
    } else {
        e.problems().iter().map(one).collect()
    };
    json(
        status,
        &serde_json::json!({
            "ok": false,
            "kind": e.kind().as_str(),
            "error": crate::error::chain(e),
            "problems": problems,
        }),
    )
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut body = value.to_string();
    body.push('\n');
    let mut resp = text(status, body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
