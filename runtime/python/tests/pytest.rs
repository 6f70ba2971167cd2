//! Runs the Python package's tests (tests/test_*.py) with pytest, against the native module
//! that this `cargo test` built and the guests that the `membrane-test-artifacts` crate built.
//!
//! cargo builds the library before this test (it is an `rlib` too for that) into the
//! directory the test runs from, `<target>/<profile>/deps/lib_native.so`; only `cargo
//! build` copies it up to `<target>/<profile>`, so that copy may be stale and is not used.
//!
//! The package is assembled in a temporary directory as a wheel would lay it out
//! (python/membrane plus the library as `membrane/_native.abi3.so`); pytest comes from PyPI
//! into a virtual environment kept under the target directory (`python-tests/venv`), made
//! once. Needs python3 (3.9 or later, with `venv`); `MEMBRANE_PYTHON` names another
//! interpreter, and `MEMBRANE_PYTEST_ARGS` adds arguments to pytest (`-k host -x`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use membrane_test_artifacts as guests;

/// The pytest release the tests run with.
const PYTEST: &str = "9.2.0";

/// The longest a run may take before it is stopped as hung (it takes seconds).
const HANG_GUARD: Duration = Duration::from_secs(300);

#[test]
fn pytest() {
    let python =
        std::env::var_os("MEMBRANE_PYTHON").map_or_else(|| "python3".into(), PathBuf::from);
    check_python(&python);
    let deps = deps_dir();
    let native = native_library(&deps);
    let pkg = tempfile::tempdir().expect("a temporary directory");
    assemble(pkg.path(), &native);
    let target = deps
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from <target>/<profile>/deps");
    let venv_python = venv(&python, &target.join("python-tests"));

    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = pkg.path().join("pytest.log");
    let out = std::fs::File::create(&log).expect("the log file");
    let mut cmd = Command::new(&venv_python);
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .args(
            std::env::var("MEMBRANE_PYTEST_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .current_dir(crate_dir.join("tests"))
        .env("PYTHONPATH", pkg.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONHOME")
        .env(
            "MEMBRANE_TEST_CACHE",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("membrane-cache"),
        )
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("the log file"))
        .stderr(out);
    for (name, path) in [
        ("TYPES", guests::TYPES),
        ("PROBE", guests::PROBE),
        ("ADDER", guests::ADDER),
        ("CALC", guests::CALC),
        ("NEEDS_KV", guests::NEEDS_KV),
        ("DOCS_USER", guests::DOCS_USER),
        ("PLUGIN_RUST", guests::PLUGIN_RUST),
    ] {
        cmd.env(format!("MEMBRANE_TEST_{name}"), path);
    }
    let mut child = cmd.spawn().expect("pytest starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for pytest") {
            break Some(status);
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    println!("{output}");
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("pytest failed ({s}):\n{output}"),
        None => panic!("pytest ran for more than {HANG_GUARD:?} and was stopped:\n{output}"),
    }
}

/// Fails with a clear message when the interpreter is missing or too old.
fn check_python(python: &Path) {
    let out = Command::new(python)
        .args(["-c", "import sys; print(sys.version_info >= (3, 9))"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; the Python package's tests need python3 (3.9 or later) \
                 with the venv module (Debian: apt-get install python3 python3-venv), or \
                 MEMBRANE_PYTHON set to one",
                python.display()
            )
        });
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && answer.trim() == "True",
        "{} is not Python 3.9 or later: {answer}{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The directory this test runs from, `<target>/<profile>/deps`.
fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    exe.parent().expect("the test's directory").to_path_buf()
}

/// The native module cargo built for this test run, checked to be newer than its sources.
fn native_library(deps: &Path) -> PathBuf {
    let lib = deps.join(format!(
        "{}_native{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let built = modified(&lib).unwrap_or_else(|| {
        panic!(
            "{} is missing: `cargo test -p membrane-python` builds it before this test",
            lib.display()
        )
    });
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).expect("src/") {
        let path = entry.expect("src/ entry").path();
        let changed = modified(&path).unwrap_or(SystemTime::UNIX_EPOCH);
        assert!(
            changed <= built,
            "{} is older than {}: build it again with `cargo test -p membrane-python`",
            lib.display(),
            path.display()
        );
    }
    lib
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Lays the package out in `dir` as a wheel installs it: `membrane/` with the Python files,
/// the type stubs, `py.typed`, and the native module under the name CPython imports.
fn assemble(dir: &Path, native: &Path) {
    let pkg = dir.join("membrane");
    std::fs::create_dir_all(&pkg).expect("the package directory");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/membrane");
    for entry in std::fs::read_dir(&source).expect("python/membrane") {
        let path = entry.expect("python/membrane entry").path();
        let name = path.file_name().expect("a file name").to_string_lossy();
        if name.ends_with(".py") || name.ends_with(".pyi") || name == "py.typed" {
            std::fs::copy(&path, pkg.join(&*name)).expect("copying the package");
        }
    }
    let module = if cfg!(windows) {
        "_native.pyd"
    } else {
        "_native.abi3.so"
    };
    // A hard link where it can (the library is 100 MB with line tables), else a copy.
    let target = pkg.join(module);
    if std::fs::hard_link(native, &target).is_err() {
        std::fs::copy(native, &target).expect("copying the native module");
    }
}

/// The interpreter of the virtual environment with pytest, made under `dir` the first time.
fn venv(python: &Path, dir: &Path) -> PathBuf {
    let venv = dir.join("venv");
    let marker = format!("pytest-{PYTEST}");
    if venv.join(&marker).exists() {
        return venv_python(&venv);
    }
    std::fs::create_dir_all(dir).expect("the python-tests directory");
    // Made aside and renamed into place, so that a run stopped half-way leaves nothing
    // that looks ready.
    let fresh = dir.join(format!("venv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh);
    run(
        Command::new(python).arg("-m").arg("venv").arg(&fresh),
        "making a virtual environment (Debian: apt-get install python3-venv)",
    );
    run(
        Command::new(venv_python(&fresh)).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            &format!("pytest=={PYTEST}"),
        ]),
        "installing pytest from PyPI",
    );
    std::fs::write(fresh.join(&marker), "").expect("the venv's marker");
    let _ = std::fs::remove_dir_all(&venv);
    if std::fs::rename(&fresh, &venv).is_err() {
        // Another run put its own in place meanwhile.
        let _ = std::fs::remove_dir_all(&fresh);
    }
    venv_python(&venv)
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
