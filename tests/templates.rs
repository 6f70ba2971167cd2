//! `membrane new`: every template from generation to a successful call or request, by the
//! commands `membrane new` prints, run by `sh` with the test's `membrane` first on PATH.
//!
//! The generated projects live under the target directory (so the repository's
//! rust-toolchain.toml applies to their builds). The Rust ones build into the guests'
//! target directory through a `target` symlink, so their dependencies are not compiled
//! again (see `share_cargo_target`); the Python and
//! JavaScript ones find the tools the plugin tests install (`.venv` and `node_modules`
//! symlinks), so their `build.sh` skips its install step. `CARGO_TARGET_DIR` points
//! elsewhere for every command: the templates' builds must not depend on it.

use std::path::PathBuf;
use std::process::{Command, Output};

use membrane_test_artifacts::plugins::{self, Language};

use crate::common::{cache_dir, membrane, runtime_dir, stderr, stdout};

/// A generated project and the commands `membrane new` printed for it.
struct Project {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    bin: PathBuf,
    next: Vec<String>,
}

/// `membrane new TEMPLATE NAME` in a fresh directory.
fn generate(template: &str, name: &str) -> Project {
    let tmp = tempfile::Builder::new()
        .prefix("template-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let o = crate::common::membrane_in(Some(tmp.path()), &["new", template, name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = stdout(&o);
    let next: Vec<String> = printed
        .lines()
        .skip_while(|l| l.trim() != "next:")
        .skip(1)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        next.first().map(String::as_str),
        Some(&*format!("cd {name}")),
        "{printed}"
    );
    // `membrane` on PATH is this build's.
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_membrane"), bin.join("membrane")).unwrap();
    Project {
        dir: tmp.path().join(name),
        next: next[1..].to_vec(),
        bin,
        _tmp: tmp,
    }
}

impl Project {
    /// Points the project's `target` at the guests' Cargo target directory, with the
    /// guests' Cargo.lock: the same wit-bindgen and wasip2 at the same versions, built by
    /// this build already with the same release profile, so the template's build compiles
    /// only its own crate. (A user's first build resolves and compiles them.)
    fn share_cargo_target(&self) {
        let guests = crate::common::repo_root().join("guests");
        std::fs::copy(guests.join("Cargo.lock"), self.dir.join("Cargo.lock")).unwrap();
        std::os::unix::fs::symlink(guests.join("target"), self.dir.join("target")).unwrap();
    }

    /// Runs one command line with `sh`, in the project's directory.
    fn sh(&self, line: &str) -> Output {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("sh");
        // A user's shell, not this test's: none of the variables cargo set for it (they
        // would also make the template's cargo rebuild what the guests' build compiled).
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let cargo_set = key.starts_with("CARGO_")
                && key != "CARGO_HOME"
                && !key.starts_with("CARGO_NET")
                && !key.starts_with("CARGO_REGISTRIES");
            if cargo_set || key.starts_with("RUSTC") || key == "RUSTFLAGS" {
                cmd.env_remove(&*key);
            }
        }
        let o = cmd
            .arg("-c")
            .arg(line)
            .current_dir(&self.dir)
            .env("PATH", path)
            .env_remove("MEMBRANE_LOG")
            .env("MEMBRANE_CACHE_DIR", cache_dir())
            .env("MEMBRANE_RUNTIME_DIR", runtime_dir())
            .env("CARGO_TARGET_DIR", self._tmp.path().join("not-here"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "`{line}` failed in {}:\n{}\n{}",
            self.dir.display(),
            stdout(&o),
            stderr(&o)
        );
        o
    }

    /// Runs every printed command; returns the last one's stdout.
    fn run_next(&self) -> String {
        let mut last = String::new();
        for line in &self.next {
            last = stdout(&self.sh(line));
        }
        last
    }
}

/// A library module's template: `membrane build`, then the call it prints.
fn library(template: &str, name: &str, prepare: impl FnOnce(&Project)) {
    let p = generate(template, name);
    prepare(&p);
    assert_eq!(p.next[0], "membrane build", "{:?}", p.next);
    assert!(
        p.next[1].starts_with("membrane call membrane.toml"),
        "{:?}",
        p.next
    );
    assert_eq!(p.run_next().trim(), "\"Hello, Ada!\"", "{template}");
}

#[test]
fn rust_lib_template_builds_and_answers_a_call() {
    library("rust-lib", "lib-mod", Project::share_cargo_target);
}

#[test]
fn rust_command_template_builds_and_runs() {
    let p = generate("rust-command", "cmd-mod");
    p.share_cargo_target();
    assert_eq!(p.next, ["membrane run --build -- Ada"]);
    assert_eq!(p.run_next(), "Hello, Ada!\n");
}

#[test]
fn linked_template_builds_and_runs_across_the_link() {
    let p = generate("linked", "shop");
    p.share_cargo_target();
    assert_eq!(p.next, ["membrane run --build -- Ada", "membrane graph"]);
    assert_eq!(stdout(&p.sh(&p.next[0])), "Hello, Ada!\n");
    let graph = stdout(&p.sh(&p.next[1]));
    assert!(
        graph.contains("\"shop\" -> \"greeter\" [label=\"local:greeter/greet@0.1.0\"]"),
        "{graph}"
    );
}

/// The HTTP template, and the dev loop on it: `serve --watch` rebuilds on a change of
/// the sources and upgrades live; a build that fails leaves the running generation serving.
#[tokio::test]
async fn rust_http_template_serves_and_rebuilds_under_watch() {
    let p = generate("rust-http", "web-mod");
    p.share_cargo_target();
    assert_eq!(
        p.next,
        ["membrane serve --build", "curl http://127.0.0.1:8080/hello"]
    );
    // The printed `serve` on its manifest's port 8080 would collide with other tests:
    // build as it would, then serve on a free port.
    p.sh("membrane build");
    let served = crate::serve::cli::start_with(&p.dir.join("membrane.toml"), &["--watch"], &[]);
    let reply = crate::serve::get(served.addr, "/hello").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "Hello from web-mod: GET /hello\n");

    // An edit: rebuilt, then upgraded live.
    let src = p.dir.join("src/lib.rs");
    let code = std::fs::read_to_string(&src).unwrap();
    std::fs::write(&src, code.replace("Hello from", "Hi from")).unwrap();
    served.wait_for_log("sources changed: building");
    served.wait_for_log("reload: module upgraded");
    let reply = crate::serve::get(served.addr, "/hello").await;
    assert_eq!(reply.body, "Hi from web-mod: GET /hello\n");

    // A broken edit: the compiler's error is logged and the last good generation serves.
    std::fs::write(&src, code.replace("fn handle(", "fn handle(,")).unwrap();
    served.wait_for_log("sources changed: building");
    served.wait_for_log("error");
    served.wait_for_log("build failed; the running generation keeps serving");
    let reply = crate::serve::get(served.addr, "/hello").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "Hi from web-mod: GET /hello\n");
}

/// Links the project's tool directory to the one the plugin tests install.
fn tool(language: Language, link: &str) -> impl FnOnce(&Project) {
    move |p: &Project| {
        let dir = plugins::tool_dir(language)
            .unwrap_or_else(|e| panic!("cannot install the {language:?} tool: {e}"))
            .expect("a tool directory");
        std::os::unix::fs::symlink(dir, p.dir.join(link)).unwrap();
    }
}

#[test]
fn python_template_builds_and_answers_a_call() {
    library("python", "py-mod", tool(Language::Python, ".venv"));
}

#[test]
fn js_template_builds_and_answers_a_call() {
    library("js", "js-mod", tool(Language::JavaScript, "node_modules"));
}

#[test]
fn new_lists_its_templates_and_refuses_what_it_cannot_make() {
    let o = membrane(&["new", "--list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = stdout(&o);
    for t in [
        "rust-lib",
        "rust-command",
        "rust-http",
        "python",
        "js",
        "linked",
    ] {
        assert!(list.lines().any(|l| l.starts_with(t)), "{t}: {list}");
    }

    let tmp = tempfile::tempdir().unwrap();
    let o = crate::common::membrane_in(Some(tmp.path()), &["new", "cobol", "x"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("there is no template \"cobol\"; the templates are: rust-lib,"),
        "{}",
        stderr(&o)
    );
    let o = crate::common::membrane_in(Some(tmp.path()), &["new", "rust-lib", "My_Lib"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("lowercase words"), "{}", stderr(&o));

    // Nothing of the user's is overwritten: a directory with files in it is refused.
    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/keep.txt"), "mine").unwrap();
    let o = crate::common::membrane_in(Some(tmp.path()), &["new", "rust-lib", "taken"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("exists and is not empty"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("taken/keep.txt")).unwrap(),
        "mine"
    );
    assert!(!tmp.path().join("taken/membrane.toml").exists());

    // --dir puts it elsewhere; the module keeps its name.
    let o = crate::common::membrane_in(
        Some(tmp.path()),
        &["new", "rust-command", "tool", "--dir", "sub/place"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest = std::fs::read_to_string(tmp.path().join("sub/place/membrane.toml")).unwrap();
    assert!(manifest.contains("[modules.tool]"), "{manifest}");
    assert!(stdout(&o).contains("  cd sub/place\n"), "{}", stdout(&o));
}
