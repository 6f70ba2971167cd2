//! The `membrane` command: inspect, call, check, build, and the example app.

use crate::common::*;

#[test]
fn inspect_prints_wit() {
    let o = membrane(&["inspect", guests::PROBE]);
    assert!(o.status.success(), "{}", stderr(&o));
    let wit = stdout(&o);
    assert!(
        wit.contains("export membrane-test:probe/caps@0.1.0;"),
        "{wit}"
    );
    assert!(wit.contains("import wasi:filesystem/"), "{wit}");
    // The exported functions, with their signatures, without asking for --full; the
    // definitions of imported interfaces only with it.
    assert!(
        wit.contains("read-file: func(path: string) -> result<string, string>;"),
        "{wit}"
    );
    assert!(!wit.contains("interface preopens"), "{wit}");
    let full = stdout(&membrane(&["inspect", "--full", guests::PROBE]));
    assert!(full.contains("interface preopens"), "{full}");
    let o = membrane(&["inspect", "--full", guests::TYPES]);
    let wit = stdout(&o);
    assert!(wit.contains("record point"), "{wit}");
    assert!(
        wit.contains("echo-point: func(p: point) -> point;"),
        "{wit}"
    );
}

#[test]
fn inspect_rejects_what_is_not_a_component() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, b"definitely not wasm").unwrap();
    assert_clean_failure(
        &membrane(&["inspect", junk.to_str().unwrap()]),
        "not WebAssembly",
    );
    let core = tmp.path().join("core.wasm");
    std::fs::write(&core, wat::parse_str("(module)").unwrap()).unwrap();
    assert_clean_failure(
        &membrane(&["inspect", core.to_str().unwrap()]),
        "core WebAssembly module",
    );
    assert_clean_failure(&membrane(&["inspect", "/no/such.wasm"]), "cannot read");
}

fn types_manifest(dir: &std::path::Path) -> String {
    write_manifest(
        dir,
        &format!("[modules.types]\ncomponent = {:?}\n", guests::TYPES),
    )
    .to_str()
    .unwrap()
    .to_string()
}

#[test]
fn call_round_trips_wave_values() {
    let tmp = tempfile::tempdir().unwrap();
    let m = types_manifest(tmp.path());
    let echo = "membrane-test:types/echo";
    let cases = [
        (
            "echo-string",
            vec![r#""a \"quoted\" string""#],
            r#""a \"quoted\" string""#,
        ),
        (
            "echo-point",
            vec![r#"{x: 5, y: 6, label: "r"}"#],
            r#"{x: 6, y: 7, label: "r"}"#,
        ),
        ("sum", vec!["[-1, -2]"], "-3"),
        ("find", vec![r#"["x", "y"]"#, r#""y""#], "some(1)"),
        ("parse-u32", vec![r#""7""#], "ok(7)"),
        (
            "parse-u32",
            vec![r#""-7""#],
            r#"err("\"-7\": invalid digit found in string")"#,
        ),
    ];
    for (func, args, expected) in cases {
        let export = format!("{echo}#{func}");
        let mut argv = vec!["call", &m, "types", &export];
        argv.extend(args.iter());
        let o = membrane(&argv);
        assert!(o.status.success(), "{func}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim_end(), expected, "{func}");
    }
    let o = membrane(&["call", &m, "types", "hello", r#""cli""#]);
    assert_eq!(stdout(&o), "\"hello, cli\"\n");
}

#[test]
fn call_errors_are_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let m = types_manifest(tmp.path());
    assert_clean_failure(
        &membrane(&["call", &m, "types", "hello", "42"]),
        "argument `name`",
    );
    // The message shows the syntax, and how a shell keeps the quotes.
    assert_clean_failure(
        &membrane(&["call", &m, "types", "hello", "42"]),
        r#"write it like "text" (in a shell, quote the whole value: '"text"')"#,
    );
    assert_clean_failure(
        &membrane(&["call", &m, "types", "hello"]),
        "takes 1 argument",
    );
    assert_clean_failure(
        &membrane(&["call", &m, "nope", "hello"]),
        "no module `nope`",
    );
    assert_clean_failure(
        &membrane(&["call", &m, "types", "bye"]),
        "no root-level export `bye`",
    );
}

#[test]
fn check_lists_every_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let m = types_manifest(tmp.path());
    let o = membrane(&["check", &m]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("ok:"), "{}", stdout(&o));

    let bad = write_manifest(
        tmp.path(),
        &format!(
            "[modules.a]\ncomponent = \"missing.wasm\"\n[modules.b]\ncomponent = {:?}\n[modules.c]\ncomponent = {:?}\ngrants = {{ dirs = [{{ host = \"nope\", guest = \"/x\" }}] }}\n",
            guests::NEEDS_KV,
            guests::PROBE
        ),
    );
    let o = membrane(&["check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("3 problems"), "{err}");
    assert!(err.contains("missing.wasm"), "{err}");
    assert!(err.contains("acme:kv/store"), "{err}");
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn bad_manifests_and_files_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[modules.a]\ncomponent = \"a.wasm\"\nsurprise = 1\n",
            "surprise",
        ),
        ("[modules.a]\n", "component"),
        (
            "[modules.a]\ncomponent = \"a.wasm\"\nlimits = { timeout = \"forever\" }\n",
            "not a duration",
        ),
        (
            "[modules.a]\ncomponent = \"a.wasm\"\ngrants = { network = [\"10.0.0.1\"] }\n",
            "no port",
        ),
        (
            "[app]\nentry = \"zz\"\n[modules.a]\ncomponent = \"a.wasm\"\n",
            "names no module",
        ),
    ];
    for (text, expected) in cases {
        let m = write_manifest(tmp.path(), text);
        assert_clean_failure(&membrane(&["check", m.to_str().unwrap()]), expected);
        assert_clean_failure(&membrane(&["run", m.to_str().unwrap()]), expected);
    }
    assert_clean_failure(
        &membrane(&["run", "/no/such/membrane.toml"]),
        "cannot read manifest",
    );
    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap();
    assert_clean_failure(
        &membrane(&["run", junk.to_str().unwrap()]),
        "not WebAssembly",
    );
    let core = tmp.path().join("core.wasm");
    std::fs::write(&core, wat::parse_str("(module)").unwrap()).unwrap();
    assert_clean_failure(
        &membrane(&["run", core.to_str().unwrap()]),
        "core WebAssembly module",
    );
    // A library module cannot be run.
    let m = types_manifest(tmp.path());
    assert_clean_failure(&membrane(&["run", &m]), "does not export wasi:cli/run");
}

#[test]
fn the_example_app_runs() {
    let example = std::path::Path::new(guests::ROOT).join("examples/hello/membrane.toml");
    let o = membrane(&["run", example.to_str().unwrap(), "--", "Ada", "Grace"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Hello from a sandbox, Ada!"), "{out}");
    assert!(out.contains("Hello from a sandbox, Grace!"), "{out}");
    assert!(out.contains("out of reach"), "{out}");
    assert!(stderr(&o).contains("greeted 2 people"), "{}", stderr(&o));
}

#[test]
fn build_runs_each_command_and_reports_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        "[modules.a]\ncomponent = \"a.wasm\"\nbuild = \"echo built > a.txt\"\n[modules.b]\ncomponent = \"b.wasm\"\n",
    );
    let o = membrane(&["build", m.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("a.txt")).unwrap(),
        "built\n"
    );
    let m = write_manifest(
        tmp.path(),
        "[modules.a]\ncomponent = \"a.wasm\"\nbuild = \"exit 3\"\n",
    );
    assert_clean_failure(
        &membrane(&["build", m.to_str().unwrap()]),
        "module `a`: build command `exit 3` failed",
    );
}

/// Issue 30: a build that succeeds without writing the component (cargo building into
/// `CARGO_TARGET_DIR`, a common habit) says so at once, with the likely cause.
#[test]
fn a_build_that_writes_no_component_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    // A "cargo" command that builds nothing where `component` points.
    let m = write_manifest(
        tmp.path(),
        "[modules.a]\ncomponent = \"target/a.wasm\"\nbuild = \"echo cargo build --release\"\n",
    );
    let build = |target_dir: Option<&str>| {
        let mut cmd = membrane_command();
        cmd.args(["build", m.to_str().unwrap()]);
        match target_dir {
            Some(d) => cmd.env("CARGO_TARGET_DIR", d),
            None => cmd.env_remove("CARGO_TARGET_DIR"),
        };
        cmd.output().expect("membrane runs")
    };
    // `membrane build` warns (a later step may put the component there) ...
    let o = build(Some("/elsewhere/target"));
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "warning: module `a`: its build command `echo cargo build --release` succeeded, but its component"
        ) && err.contains("CARGO_TARGET_DIR is set (/elsewhere/target)")
            && err.contains("--target-dir"),
        "{err}"
    );
    let o = build(None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("check that `component` names the file the command writes"),
        "{}",
        stderr(&o)
    );
    // ... and `run --build`, which loads the app next, stops there with the reason.
    let mut cmd = membrane_command();
    let o = cmd
        .args(["run", "--build", m.to_str().unwrap()])
        .env("CARGO_TARGET_DIR", "/elsewhere/target")
        .output()
        .unwrap();
    assert_clean_failure(&o, "CARGO_TARGET_DIR is set");
}

/// `membrane build` with stand-ins for rustc and rustup on PATH: rustc reports a sysroot that
/// lacks wasm32-wasip2, and rustup is absent, failing, or installing the target.
#[test]
fn build_installs_a_missing_wasm_target_with_rustup() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let sysroot = tmp.path().join("sysroot");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(sysroot.join("lib/rustlib")).unwrap();
    let script = |name: &str, body: &str| {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let calls = tmp.path().join("calls.txt");
    script(
        "rustc",
        &format!(
            "echo \"rustc $*\" >> {calls:?}\necho {:?}",
            sysroot.display().to_string()
        ),
    );
    let build = |manifest: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_membrane"))
            .args(["build", manifest.to_str().unwrap()])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env_remove("MEMBRANE_LOG")
            .output()
            .expect("membrane runs")
    };
    let m = write_manifest(
        tmp.path(),
        "[modules.a]\ncomponent = \"a.wasm\"\nbuild = \"echo wasm32-wasip2 > a.txt\"\n",
    );
    let built = tmp.path().join("a.txt");

    // No rustup: one line that names the command, and nothing built.
    let o = build(&m);
    assert_clean_failure(
        &o,
        "there is no rustup on PATH to install it; run `rustup target add wasm32-wasip2`",
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(!built.exists());

    // rustup cannot install it: what rustup said, on the same line.
    script(
        "rustup",
        &format!(
            "echo \"rustup $*\" >> {calls:?}\ncase \"$1\" in\n show) echo 'tc-1 (overridden by rust-toolchain.toml)';;\n target) echo 'info: downloading' >&2; echo 'error: could not download file' >&2; exit 1;;\nesac"
        ),
    );
    let o = build(&m);
    assert_clean_failure(
        &o,
        "cannot install the wasm32-wasip2 target: `rustup target add wasm32-wasip2 --toolchain tc-1` failed (exit status: 1): could not download file",
    );
    assert!(!built.exists());

    // rustup installs it: one line says so, then the build runs.
    script(
        "rustup",
        &format!(
            "echo \"rustup $*\" >> {calls:?}\ncase \"$1\" in\n show) echo 'tc-1 (overridden by rust-toolchain.toml)';;\n target) mkdir -p {:?};;\nesac",
            sysroot
                .join("lib/rustlib/wasm32-wasip2")
                .display()
                .to_string()
        ),
    );
    let o = build(&m);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(
            "installing the missing wasm32-wasip2 target: rustup target add wasm32-wasip2 --toolchain tc-1\nbuilding a: "
        ),
        "{}",
        stderr(&o)
    );
    assert!(built.exists());

    // Installed: nothing to install. A command that names no wasm32-wasip2 is not checked.
    std::fs::write(&calls, "").unwrap();
    let o = build(&m);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("installing"), "{}", stderr(&o));
    let m2 = write_manifest(
        tmp.path(),
        "[modules.a]\ncomponent = \"a.wasm\"\nbuild = \"true\"\n",
    );
    assert!(build(&m2).status.success());
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "rustc --print sysroot\n"
    );

    // `cargo +NAME` builds with NAME, whatever the directory's toolchain is.
    std::fs::remove_dir(sysroot.join("lib/rustlib/wasm32-wasip2")).unwrap();
    std::fs::write(&calls, "").unwrap();
    let m = write_manifest(
        tmp.path(),
        "[modules.a]\ncomponent = \"a.wasm\"\nbuild = \"echo cargo +nightly build --target wasm32-wasip2\"\n",
    );
    let o = build(&m);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("rustup target add wasm32-wasip2 --toolchain nightly"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "rustc +nightly --print sysroot\nrustup target add wasm32-wasip2 --toolchain nightly\n"
    );
}

/// The notes example's manifest, with its data directory moved into `dir`.
fn notes_manifest(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(guests::ROOT).join("examples/notes/membrane.toml"),
    )
    .unwrap();
    let text = text.replace(
        "../../guests/target",
        &format!("{}/guests/target", guests::ROOT),
    );
    std::fs::create_dir_all(dir.join("data")).unwrap();
    write_manifest(dir, &text).to_str().unwrap().to_string()
}

#[test]
fn the_notes_example_links_three_modules() {
    let tmp = tempfile::tempdir().unwrap();
    let m = notes_manifest(tmp.path());
    for (text, id) in [("buy milk", 1), ("call mom", 2)] {
        let o = membrane(&["run", &m, "--", "add", text]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), format!("added note {id}\n"));
    }
    let o = membrane(&["run", &m, "--", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("│   1. buy milk │"), "{out}");
    assert!(out.contains("│   2. call mom │"), "{out}");
    // The store wrote into its granted directory and nowhere else.
    let files = std::fs::read_dir(tmp.path().join("data")).unwrap().count();
    assert_eq!(files, 3);
    // Calls through the API of the entry work the same way.
    let o = membrane(&["call", &m, "notes", "acme:notes/api#add", r#""from call""#]);
    assert_eq!(stdout(&o), "ok(3)\n", "{}", stderr(&o));
}

#[test]
fn graph_prints_dot_and_mermaid() {
    let tmp = tempfile::tempdir().unwrap();
    let m = notes_manifest(tmp.path());
    let o = membrane(&["graph", &m]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dot = stdout(&o);
    assert!(dot.starts_with("digraph app {"), "{dot}");
    assert!(
        dot.contains("\"notes\" -> \"store\" [label=\"acme:kv/store@0.1.0\"];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"notes\" -> \"render\" [label=\"acme:text/render@0.1.0\"];"),
        "{dot}"
    );
    assert!(
        dot.contains("render\\nplacement isolated\\nno files, env, network or http\\nstdout log · stderr log\\n8MiB · 200ms · "),
        "{dot}"
    );
    let o = membrane(&["graph", "--format", "mermaid", &m]);
    let mermaid = stdout(&o);
    assert!(mermaid.starts_with("flowchart LR"), "{mermaid}");
    assert!(
        mermaid.contains("m_notes -->|\"acme:kv/store@0.1.0\"| m_store"),
        "{mermaid}"
    );
    assert!(mermaid.contains("<br/>dir /data rw<br/>"), "{mermaid}");
    assert_clean_failure(&membrane(&["graph", "--format", "png", &m]), "png");
}

/// The graph and the admin page draw the same cards: every grant, `http` origins included.
#[test]
fn graph_shows_every_grant_the_page_shows() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.m]\ncomponent = {:?}\n[modules.m.grants]\nhttp = [\"https://api.example.com\"]\nnetwork = [\"127.0.0.1:5432\"]\nenv = {{ TOKEN = \"s3cret\" }}\n",
            guests::HELLO
        ),
    );
    let o = membrane(&["graph", m.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dot = stdout(&o);
    for line in [
        "\\nhttp https://api.example.com\\n",
        "\\nnet 127.0.0.1:5432\\n",
        "\\nenv TOKEN\\n",
    ] {
        assert!(dot.contains(line), "{line} missing from {dot}");
    }
    assert!(!dot.contains("s3cret"), "an env value is drawn: {dot}");
}

#[test]
fn check_warns_about_unused_links() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.a]\ncomponent = {:?}\nlinks = {{ \"acme:kv/store\" = \"b\" }}\n[modules.b]\ncomponent = {:?}\n",
            guests::TYPES,
            guests::KV_STORE
        ),
    );
    let o = membrane(&["check", m.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("warning: module `a` links `acme:kv/store` to `b` but does not import it"),
        "{}",
        stderr(&o)
    );
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.a]\ncomponent = {:?}\nlinks = {{ \"acme:kv/store\" = \"ghost\" }}\n",
            guests::NEEDS_KV
        ),
    );
    assert_clean_failure(
        &membrane(&["check", m.to_str().unwrap()]),
        "names no module",
    );
}

/// Every command finds the manifest when given its directory, and the one in the current
/// directory when given none (`call` needs it named: its module and export follow).
#[test]
fn commands_find_the_manifest_in_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let m = types_manifest(tmp.path());
    assert!(m.ends_with("membrane.toml"), "{m}");
    let dir = tmp.path().to_str().unwrap();
    for args in [vec!["check", dir], vec!["check"]] {
        let o = membrane_in(Some(tmp.path()), &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).starts_with("ok:"), "{args:?}: {}", stdout(&o));
    }
    let o = membrane_in(Some(tmp.path()), &["graph"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("types"), "{}", stdout(&o));
    let o = membrane(&["call", dir, "types", "hello", "\"dir\""]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A directory without one names the file it looked for.
    let empty = tempfile::tempdir().unwrap();
    let o = membrane_in(Some(empty.path()), &["check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("membrane.toml"), "{}", stderr(&o));
    let o = membrane(&["check", empty.path().to_str().unwrap()]);
    assert!(
        stderr(&o).contains(&format!("{}/membrane.toml", empty.path().display())),
        "{}",
        stderr(&o)
    );
}

/// `call` takes a bare component as `run` does: it is the only module, so the export comes
/// second.
#[test]
fn call_of_a_bare_component() {
    let o = membrane(&["call", guests::TYPES, "hello", r#""bare""#]);
    assert!(o.status.success(), "{}", stderr(&o));
    let direct = stdout(&o);
    let tmp = tempfile::tempdir().unwrap();
    let m = types_manifest(tmp.path());
    let o = membrane(&["call", &m, "types", "hello", r#""bare""#]);
    assert_eq!(stdout(&o), direct);
    // A manifest still needs its module and export.
    assert_clean_failure(&membrane(&["call", &m, "types"]), "name the export to call");
    assert_clean_failure(
        &membrane(&["call", &m, "types", "hello", "--log-output"]),
        "--log-output applies to a bare .wasm",
    );
}

/// A listener address in use says which flag or key moves it.
#[test]
fn a_port_in_use_names_the_flag_that_moves_it() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[app.http]\nroutes = {{ \"/\" = \"m\" }}\n[modules.m]\ncomponent = {:?}\n",
            guests::HTTP_HELLO
        ),
    );
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let o = membrane(&["serve", m.to_str().unwrap(), "--listen", &addr]);
    assert_clean_failure(&o, "another process holds it");
    assert_clean_failure(&o, "--listen IP:PORT");
    let o = membrane(&[
        "serve",
        m.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin",
        &addr,
    ]);
    assert_clean_failure(&o, "--admin IP:PORT");
}

/// A missing function's message lists the interface's functions, not its types.
#[test]
fn a_missing_function_lists_only_functions() {
    let o = membrane(&["call", guests::GREET_V1, "acme:greet/tally#nope"]);
    assert_clean_failure(
        &o,
        "its functions: [constructor]counter, [method]counter.bump",
    );
    let o = membrane(&["call", guests::GREET_V1, "acme:greet/api#nope"]);
    assert_clean_failure(&o, "its functions: hello, version");
}

/// `membrane check` reports every problem of every stage it reaches in one run: each
/// unknown key at its own line; and a bad link target together with a missing component
/// and a missing granted directory (the declaration's problems no longer stop the load
/// before components are read and grants opened).
#[test]
fn check_reports_every_problem_it_can_reach() {
    let tmp = tempfile::tempdir().unwrap();
    let typos = tmp.path().join("typos.toml");
    std::fs::write(
        &typos,
        "[modules.a]\ncomponnet = \"a.wasm\"\n\n[modules.a.limits]\nmemroy = \"1MiB\"\ntimout = \"1s\"\n",
    )
    .unwrap();
    let o = membrane(&["check", typos.to_str().unwrap()]);
    let err = stderr(&o);
    assert_clean_failure(&o, "problems:");
    for (line, key) in [(2, "componnet"), (5, "memroy"), (6, "timout")] {
        assert!(
            err.contains(&format!("typos.toml:{line}: modules.a.")) && err.contains(key),
            "{key} at line {line}: {err}"
        );
    }
    assert!(err.contains("did you mean `memory`?"), "{err}");

    let stages = tmp.path().join("stages.toml");
    std::fs::write(
        &stages,
        "[modules.a]\ncomponent = \"missing.wasm\"\nlinks = { \"acme:kv/store\" = \"nobody\" }\ngrants = { dirs = [{ host = \"no-such-dir\", guest = \"/d\" }] }\n",
    )
    .unwrap();
    let o = membrane(&["check", stages.to_str().unwrap()]);
    let err = stderr(&o);
    assert_clean_failure(&o, "3 problems:");
    for (line, says) in [
        (3, "\"nobody\" names no module"),
        (2, "cannot read component"),
        (4, "no-such-dir cannot be opened"),
    ] {
        assert!(
            err.contains(&format!("stages.toml:{line}: module `a`: ")) && err.contains(says),
            "{says}: {err}"
        );
    }
}
