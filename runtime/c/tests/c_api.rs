//! The C programs of tests/c, compiled with gcc against include/membrane.h
//! (`-std=c99 -Wall -Wextra -Werror -fsanitize=address`), linked to the library cargo
//! built for this test (target/debug/deps/libmembrane_c.so), and run on real guests
//! under AddressSanitizer with its leak checker: a leak, a double free or a use after
//! free in the program or in the library fails the test, as does a failed check.
//!
//! The library is a `cdylib` and an `rlib`: cargo builds the lib target for this test (it
//! links the rlib), and one rustc run writes both, so the `.so` next to this test's
//! binary is always the current one (checked below against the sources' times).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use membrane_test_artifacts as guests;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// target/debug/deps, where cargo put this test and the library.
fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

fn newest_source() -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut files = vec![crate_dir().join("Cargo.toml")];
    for entry in std::fs::read_dir(crate_dir().join("src")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for f in files {
        newest = newest.max(std::fs::metadata(&f).unwrap().modified().unwrap());
    }
    newest
}

/// The library, checked to be newer than its sources.
fn library() -> PathBuf {
    let lib = deps_dir().join("libmembrane_c.so");
    let built = std::fs::metadata(&lib)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; cargo builds it for this test (crate-type cdylib + rlib)",
                lib.display()
            )
        });
    assert!(
        built >= newest_source(),
        "{} is older than runtime/c/src: cargo did not rebuild it for this test",
        lib.display()
    );
    lib
}

fn gcc() -> &'static str {
    match Command::new("gcc").arg("--version").output() {
        Ok(o) if o.status.success() => "gcc",
        _ => panic!(
            "gcc is needed to compile the C API's tests (tests/c) and was not found on PATH: \
             install gcc (apt-get install gcc) and run the tests again"
        ),
    }
}

fn tmp_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("membrane-c");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The compiled-code cache of the workspace's tests (tests/common/mod.rs), which the
/// programs share with them: entries are keyed by the component's hash in a directory per
/// engine configuration, so sharing is safe, and a guest is compiled once.
fn cache_dir() -> String {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("membrane-cache")
        .to_string_lossy()
        .into_owned()
}

/// Compiles `source` (relative to the crate) into `name`, under AddressSanitizer unless
/// `plain`; returns the program.
fn compile(source: &Path, name: &str, plain: bool) -> PathBuf {
    let lib = library();
    let exe = tmp_dir().join(name);
    let mut cmd = Command::new(gcc());
    cmd.args([
        "-std=c99",
        "-pedantic",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-g",
        "-pthread",
    ]);
    if !plain {
        cmd.arg("-fsanitize=address");
    }
    cmd.arg("-I")
        .arg(crate_dir().join("include"))
        .arg("-I")
        .arg(crate_dir().join("tests/c"))
        .arg(source)
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(lib.parent().unwrap())
        .arg("-lmembrane_c")
        .arg(format!("-Wl,-rpath,{}", lib.parent().unwrap().display()));
    let out = cmd.output().expect("running gcc");
    assert!(
        out.status.success(),
        "gcc failed on {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// What AddressSanitizer needs beside wasmtime: wasmtime handles SIGSEGV, SIGBUS and SIGFPE
/// itself (guest memory faults and traps), so ASan must leave those signals alone.
const ASAN_OPTIONS: &str = "detect_leaks=1:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:\
     allow_user_segv_handler=1:detect_stack_use_after_return=0:abort_on_error=0";

/// Compiles and runs tests/c/`name`.c with `args`; it must print `<name>: ok`.
fn run(name: &str, args: &[&str]) {
    let exe = compile(&crate_dir().join(format!("tests/c/{name}.c")), name, false);
    let started = std::time::Instant::now();
    let out = Command::new(&exe)
        .args(args)
        // Cargo's search path for the test names target/debug first, where an older
        // library may be (from `cargo build`): the rpath must decide.
        .env_remove("LD_LIBRARY_PATH")
        .env("ASAN_OPTIONS", ASAN_OPTIONS)
        .env("LSAN_OPTIONS", "exitcode=23:max_leaks=20")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("{name}: ok")),
        "{name} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    eprintln!("{name}: ran in {:?}", started.elapsed());
}

#[test]
fn values() {
    run("values", &[guests::TYPES, &cache_dir()]);
}

#[test]
fn limits() {
    run("limits", &[guests::PROBE, &cache_dir()]);
}

#[test]
fn host_functions() {
    run(
        "host",
        &[
            guests::NOTES,
            guests::RENDER,
            guests::NEEDS_KV,
            &cache_dir(),
        ],
    );
}

#[test]
fn manifest_reload_and_upgrade() {
    let dir = tmp_dir().join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    let greet = |component: &str| {
        format!(
            "[modules.greet]\ncomponent = {component:?}\n[modules.greet.limits]\ntimeout = \"2s\"\n"
        )
    };
    std::fs::write(dir.join("good.toml"), greet(guests::GREET_V1)).unwrap();
    std::fs::write(dir.join("next.toml"), greet(guests::GREET_V2)).unwrap();
    std::fs::write(
        dir.join("bad.toml"),
        format!(
            "[modules.a]\ncomponent = {:?}\nlimits = {{ memory = \"lots\" }}\n\n\
             [modules.b]\ncomponent = {:?}\nlimits = {{ timeout = \"soon\" }}\n",
            guests::GREET_V1,
            guests::GREET_V1
        ),
    )
    .unwrap();
    run(
        "manifest",
        &[&dir.to_string_lossy(), guests::GREET_V2, &cache_dir()],
    );
}

/// The example of examples/embed-c compiles as its README says, and runs.
#[test]
fn embed_c_example() {
    let root = crate_dir().join("../..");
    let exe = compile(&root.join("examples/embed-c/main.c"), "embed-c", true);
    let out = Command::new(&exe)
        .arg(guests::PLUGIN_RUST)
        .env_remove("LD_LIBRARY_PATH")
        .env("MEMBRANE_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the example failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("WORLD HELLO"), "{stdout}");
}
