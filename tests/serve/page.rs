//! The admin page (`GET /` on the admin listener), over plain HTTP and in a real headless
//! Chromium: the graph's boxes and arrows, the live cells, the rollback button.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use membrane::{AppSpec, DirMode, HttpSpec, ModuleSpec, UpgradePolicy};

use super::browser::Browser;
use super::{Served, eventually, get, request, send, serve};
use crate::common::{guests, runtime};

/// An environment variable name made to break out of the markup if it were not escaped.
const HOSTILE: &str = r#"<script>alert(1)</script>&"'"#;

/// The notes app of examples/web: `web` links to `store` (which may write `data`) and to
/// `render`.
fn notes(data: &Path) -> AppSpec {
    AppSpec::new()
        .module(
            "web",
            ModuleSpec::from_file(guests::WEB)
                .link("acme:kv/store", "store")
                .link("acme:text/render", "render"),
        )
        .module(
            "store",
            ModuleSpec::from_file(guests::KV_STORE)
                .dir(data, "/data", DirMode::ReadWrite)
                .quota("/data", Some(1 << 20), Some(100))
                .env(HOSTILE, "x")
                .concurrency(8, 16),
        )
        .module("render", ModuleSpec::from_file(guests::RENDER))
}

fn admin_url(s: &Served) -> String {
    format!("http://{}/", s.admin.expect("an admin listener"))
}

/// The JavaScript value of a table cell: `cell("web", "calls")`.
fn cell(module: &str, field: &str) -> String {
    format!(
        r#"document.querySelector('tr[data-module="{module}"] [data-field="{field}"]').textContent"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_shows_the_app_and_keeps_its_cells_live() {
    let data = tempfile::tempdir().unwrap();
    let s = serve(notes(data.path()), HttpSpec::default().route("/", "web")).await;
    let admin = s.admin.unwrap();

    // Over plain HTTP: one self-contained HTML page, names escaped.
    let r = get(admin, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe") && !csp.contains("http"), "{csp}");
    for name in ["web", "store", "render"] {
        assert!(
            r.body.contains(&format!(r#"data-module="{name}""#)),
            "{name}"
        );
    }
    assert!(!r.body.contains("<script>alert"));
    assert!(
        r.body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;")
    );
    assert!(!r.body.contains("src=\"http") && !r.body.contains("href=\"http"));
    let head = send(admin, request("HEAD", "/", Bytes::new()))
        .await
        .unwrap();
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    let post = send(admin, request("POST", "/", Bytes::new()))
        .await
        .unwrap();
    assert_eq!(post.status, 405);
    assert!(get(admin, "/nope").await.body.contains("GET / "));

    let Some(mut b) = Browser::launch() else {
        return;
    };
    b.navigate(&admin_url(&s));

    // The graph: a box per module, an arrow per importer and provider.
    let boxes = b.eval(
        "Array.from(document.querySelectorAll('svg g[data-module]'), g => g.dataset.module).sort()",
    );
    assert_eq!(boxes, serde_json::json!(["render", "store", "web"]));
    let rows = b.eval(
        "Array.from(document.querySelectorAll('tr[data-module]'), r => r.dataset.module).sort()",
    );
    assert_eq!(rows, boxes);
    let edges = b.eval(
        "Array.from(document.querySelectorAll('svg g.edge'), e => \
         [e.dataset.from, e.dataset.to, e.querySelector('text.label').textContent]).sort()",
    );
    let edges = edges.as_array().unwrap();
    assert_eq!(edges.len(), 2, "{edges:?}");
    assert_eq!(
        (&edges[0][0], &edges[0][1]),
        (&"web".into(), &"render".into())
    );
    assert!(
        edges[0][2]
            .as_str()
            .unwrap()
            .starts_with("acme:text/render@")
    );
    assert_eq!(
        (&edges[1][0], &edges[1][1]),
        (&"web".into(), &"store".into())
    );
    assert!(edges[1][2].as_str().unwrap().starts_with("acme:kv/store@"));
    // Importers above their providers, and no box over another.
    let overlaps = b.eval(
        "(() => { const r = n => document.querySelector(`svg g[data-module=\"${n}\"] rect`).getBoundingClientRect(); \
          const [w, s, d] = [r('web'), r('store'), r('render')]; \
          const apart = (a, b) => a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top; \
          return [w.bottom < s.top, w.bottom < d.top, apart(s, d)]; })()",
    );
    assert_eq!(overlaps, serde_json::json!([true, true, true]));
    let store = b.eval("document.querySelector('svg g[data-module=\"store\"]').textContent");
    let store = store.as_str().unwrap();
    for part in ["isolated", "dir /data rw", HOSTILE, "8 inst", "64MiB"] {
        assert!(store.contains(part), "{part:?} in {store:?}");
    }
    // The name stayed text: the page's own script is the only one.
    assert_eq!(b.eval("document.scripts.length"), 1);

    // The live part: the script polls /status and fills the cells.
    b.wait_for(
        "a first poll",
        "Number(document.getElementById('live').dataset.polls) >= 1",
    );
    assert_eq!(b.eval(&cell("web", "generation")), "1");
    let hash = b.eval(&cell("store", "hash"));
    assert!(hash.as_str().unwrap().starts_with("sha256:"), "{hash}");
    assert!(
        b.eval(&cell("render", "state"))
            .as_str()
            .unwrap()
            .starts_with("serving")
    );
    assert_eq!(b.eval(&cell("render", "health")), "healthy");
    assert_eq!(
        b.eval(
            "Array.from(document.querySelectorAll('button[data-rollback]')).every(b => b.hidden)"
        ),
        true
    );
    for _ in 0..5 {
        assert_eq!(get(s.addr, "/").await.status, 200);
    }
    b.wait_for(
        "the calls cell to count the requests",
        &format!("Number({}) >= 5", cell("web", "calls")),
    );
    b.wait_for(
        "a call rate",
        &format!("/^[0-9.]+\\/s$/.test({})", cell("web", "rate")),
    );
    b.wait_for(
        "the boxes' status lines",
        "document.querySelector('svg g[data-module=\"web\"] [data-field=summary]').textContent \
         === 'gen 1 · serving · healthy'",
    );
    // Routes, the last minute, and a quota with what it holds once a note is written.
    assert_eq!(b.eval(&cell("web", "routes")), "/");
    assert_eq!(b.eval(&cell("render", "routes")), "–");
    b.wait_for(
        "the last minute's calls and quantiles",
        &format!(
            "/^[0-9]+ calls? · p50 ≤ [0-9.]+ ms · p99 ≤ [0-9.]+ ms$/.test({})",
            cell("web", "recent")
        ),
    );
    let added = send(s.addr, request("POST", "/notes", "remember the milk"))
        .await
        .unwrap();
    assert_eq!(added.status, 201, "{}", added.body);
    b.wait_for(
        "the quota's use",
        &format!(
            "/^\\/data: [0-9.]+ (B|KiB) of 1\\.0 MiB, [0-9]+ of 100 files$/.test({})",
            cell("store", "quotas")
        ),
    );
    assert_eq!(b.errors(), Vec::<String>::new());
}

/// The issue's check: a module that starts failing shows it on the page within seconds,
/// though its circuit has not opened: "failing", the kinds in the last minute, a red row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_module_shows_on_the_page() {
    let front = ModuleSpec::from_file(guests::GREET_HTTP).link("acme:greet/api", "greet");
    let app = AppSpec::new()
        .module("front", front)
        .module("greet", ModuleSpec::from_file(guests::GREET_BROKEN));
    let s = serve(app, HttpSpec::default().route("/", "front")).await;
    let Some(mut b) = Browser::launch() else {
        return;
    };
    b.navigate(&admin_url(&s));
    b.wait_for(
        "a first poll",
        "Number(document.getElementById('live').dataset.polls) >= 1",
    );
    assert_eq!(b.eval(&cell("greet", "health")), "healthy");
    assert_eq!(b.eval(&cell("greet", "recent")), "no calls");
    let r = get(s.addr, "/x").await;
    assert_eq!(r.status, 500);
    b.wait_for(
        "greet shown failing",
        &format!(
            "{}.startsWith('failing') && document.querySelector('tr[data-module=\"greet\"]').classList.contains('failing')",
            cell("greet", "health")
        ),
    );
    let recent = b.eval(&cell("greet", "recent"));
    assert!(
        recent
            .as_str()
            .unwrap()
            .starts_with("1 call, 100% failed (1 trap)"),
        "{recent}"
    );
    // The importer's call failed too, as the provider's failure (counted upstream).
    let status = get(s.admin.unwrap(), "/status").await.body;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["modules"]["greet"]["failing"], true);
    assert_eq!(
        status["modules"]["greet"]["last_minute"]["failures"]["trap"],
        1
    );
    assert_eq!(
        status["modules"]["front"]["routes"],
        serde_json::json!(["/"])
    );
    assert_eq!(b.errors(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_rollback_button() {
    let front = ModuleSpec::from_file(guests::GREET_HTTP).link("acme:greet/api", "greet");
    let app = AppSpec::new()
        .module("front", front)
        .module("greet", ModuleSpec::from_file(guests::GREET_V1));
    let s = serve(app, HttpSpec::default().route("/", "front")).await;
    let v2 = ModuleSpec::from_file(guests::GREET_V2)
        .upgrade(UpgradePolicy::default().probation(Duration::from_secs(600)));
    let report = s.app.upgrade("greet", v2).await.expect("the upgrade");
    assert_eq!((report.from, report.to), (1, 2));
    assert_eq!(s.app.status()["greet"].state.as_str(), "probation");

    let Some(mut b) = Browser::launch() else {
        return;
    };
    b.navigate(&admin_url(&s));
    let button = r#"document.querySelector('tr[data-module="greet"] button[data-rollback]')"#;
    assert_eq!(b.eval(&format!("{button}.hidden")), false);
    assert_eq!(
        b.eval(r#"document.querySelector('tr[data-module="front"] button[data-rollback]').hidden"#),
        true
    );
    assert_eq!(
        b.eval(r#"document.querySelector('svg g[data-module="greet"]').classList.contains('state-probation')"#),
        true
    );
    assert_eq!(b.eval(&cell("greet", "generation")), "2");

    // Press it.
    b.eval(&format!("{button}.click(); true"));
    eventually("greet back on generation 1", || {
        s.app.status()["greet"].generation == 1
    })
    .await;
    let said = b.wait_for(
        "the page to report the rollback",
        "document.getElementById('message').textContent",
    );
    assert_eq!(said, "greet: rolled back from generation 2 to 1");
    b.wait_for(
        "the button to go once greet serves",
        &format!(
            "{button}.hidden && {}.startsWith('serving') && {} === '1'",
            cell("greet", "state"),
            cell("greet", "generation")
        ),
    );
    let last = b.eval(&cell("greet", "upgrade"));
    assert!(last.as_str().unwrap().starts_with("2 → 1"), "{last}");
    assert_eq!(b.errors(), Vec::<String>::new());
}

/// Takes docs/admin-page.png, the guide's picture of the page (docs/guide/operations.md):
/// examples/web served with some traffic and one module on probation.
///
///   cargo test -p membrane --test integration serve::page::screenshot -- --ignored
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/admin-page.png; run by hand"]
async fn screenshot() {
    let root = crate::common::repo_root();
    // From the repository's root, so the page shows the manifest's path as an operator
    // would type it (this test runs alone: it is the only ignored one).
    std::env::set_current_dir(&root).unwrap();
    let manifest = membrane::Manifest::from_file("examples/web/membrane.toml")
        .expect("examples/web/membrane.toml");
    let app = runtime().load_spec(manifest.app).await.expect("it loads");
    let s = super::serve_app(app).await;
    let render = s
        .app
        .spec("render")
        .unwrap()
        .upgrade(UpgradePolicy::default().probation(Duration::from_secs(600)));
    s.app.upgrade("render", render).await.expect("an upgrade");
    let addr = s.addr;
    let traffic = tokio::spawn(async move {
        loop {
            let _ = get(addr, "/").await;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    let Some(mut b) = Browser::launch() else {
        panic!("the screenshot needs Chromium");
    };
    b.navigate(&admin_url(&s));
    b.wait_for(
        "a few polls",
        "Number(document.getElementById('live').dataset.polls) >= 3",
    );
    let png = b.screenshot(1200, 1000);
    traffic.abort();
    let out = root.join("docs/admin-page.png");
    std::fs::write(&out, &png).unwrap();
    eprintln!("wrote {} ({} bytes)", out.display(), png.len());
    assert!(png.starts_with(b"\x89PNG"));
}
