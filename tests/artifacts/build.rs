//! Builds every guest under `guests/` for wasm32-wasip2 and writes a constant with the
//! path of each component, so tests never depend on a committed binary.
//!
//! The toolchain that builds the guests is this build's (rustup sets `RUSTUP_TOOLCHAIN` for
//! it), else the one rust-toolchain.toml pins; when it lacks the wasm32-wasip2 target, the
//! target is installed with rustup and a warning says so. Expected failures end with one line
//! on stderr and status 1, never a panic.

use std::env;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The guest packages; each builds to `<name>.wasm`.
const GUESTS: &[&str] = &[
    "probe",
    "types",
    "cli_probe",
    "needs_kv",
    "hello",
    "worker",
    "relay",
    "front",
    "kv_store",
    "render",
    "notes",
    "bench_provider",
    "bench_driver",
    "docs_user",
    "http_hello",
    "http_probe",
    "http_relay",
    "web",
    "greet_v1",
    "greet_v2",
    "greet_broken",
    "greet_dropped",
    "greet_changed",
    "greet_major",
    "greet_minor",
    "greet_front",
    "greet_http",
    "counter_v1",
    "counter_v2",
    "counter_bad",
    "counter_plain",
    "adder",
    "config_probe",
    "kv_probe",
    "bucket_store",
    "kv_probe2",
    "calc",
    "plugin_rust",
    "p3_hello",
    "p3_hello_032",
    "p3_http_probe",
    "p3_cli",
    "p3_lib",
    "p3_relay",
    "p2_calc_user",
    "p2_plain_calc",
    "p3_plain_user",
    "p3_plain_calc",
    "p3_async_user",
];

/// Guests of the `guests/` workspace whose source lives elsewhere (with their example),
/// by package directory relative to the repository root.
const ELSEWHERE: &[(&str, &str)] = &[("plugin_rust", "examples/plugins/rust")];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR"));
    let Some(root) = manifest_dir.parent().and_then(Path::parent) else {
        fail(&format!(
            "{} is not two levels below the repository root",
            manifest_dir.display()
        ));
    };
    let guests = root.join("guests");
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.lock").display()
    );
    for g in GUESTS {
        let dir = match ELSEWHERE.iter().find(|(name, _)| name == g) {
            Some((_, dir)) => root.join(dir),
            None => guests.join(g),
        };
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("examples/plugins/wit").display()
    );
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    ensure_target(&guests);
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = guests.join("target");
    let status = guest_command(&cargo, &guests)
        .args(["build", "--release", "--target", TARGET, "--workspace"])
        .arg("--target-dir")
        .arg(&target_dir)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!(
            "building the guests failed ({status}); run `cargo build --release --target {TARGET}` in {} to see why",
            guests.display()
        )),
        Err(e) => fail(&format!("cannot run {cargo} to build the guests: {e}")),
    }

    let out = target_dir.join(TARGET).join("release");
    let mut code = String::new();
    for g in GUESTS {
        let path = out.join(format!("{g}.wasm"));
        if !path.exists() {
            fail(&format!(
                "guest {g} was built but {} is missing; run `cargo build --release --target {TARGET}` in {} to see why",
                path.display(),
                guests.display()
            ));
        }
        let source = ELSEWHERE
            .iter()
            .find(|(name, _)| name == g)
            .map_or_else(|| format!("guests/{g}"), |(_, dir)| dir.to_string());
        let _ = writeln!(code, "/// The `{g}` guest component, built from {source}.");
        let _ = writeln!(
            code,
            "pub const {}: &str = {:?};",
            g.to_uppercase(),
            utf8(&path)
        );
    }
    let _ = writeln!(code, "/// The repository root.");
    let _ = writeln!(code, "pub const ROOT: &str = {:?};", utf8(root));
    // Where the plugins of examples/plugins keep their tools and caches: this build's target
    // directory, so that `cargo clean` clears them and a clean clone starts without them.
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let _ = writeln!(
        code,
        "/// The target directory of this build (`$CARGO_TARGET_DIR` or `target/`)."
    );
    let _ = writeln!(code, "pub const TARGET_DIR: &str = {:?};", utf8(&target));
    let dest = PathBuf::from(env_var("OUT_DIR")).join("guests.rs");
    if let Err(e) = std::fs::write(&dest, code) {
        fail(&format!("cannot write {}: {e}", dest.display()));
    }
}

/// A command run in `dir` as the guest build runs: without the settings cargo gives this
/// build, which are for the host and not for the guests. `RUSTUP_TOOLCHAIN` stays, so the
/// guests are built by this build's toolchain.
fn guest_command(program: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir);
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if (key.starts_with("CARGO_")
            && key != "CARGO_HOME"
            && !key.starts_with("CARGO_NET")
            && !key.starts_with("CARGO_REGISTRIES"))
            || key == "RUSTFLAGS"
            || key.starts_with("RUSTC")
            || key == "RUSTDOCFLAGS"
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// Installs the wasm32-wasip2 target for the toolchain that builds the guests, unless that
/// toolchain has it already.
fn ensure_target(guests: &Path) {
    let out = guest_command("rustc", guests)
        .args(["--print", "sysroot"])
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(out) if out.status.success() => out,
        Ok(out) => fail(&format!(
            "cannot find the Rust toolchain that builds the guests: `rustc --print sysroot` failed in {}: {}",
            guests.display(),
            tool_message(&out.stderr)
        )),
        Err(e) => fail(&format!(
            "cannot run rustc to find the Rust toolchain that builds the guests: {e}"
        )),
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let has_target = || sysroot.join("lib/rustlib").join(TARGET).is_dir();
    if has_target() {
        return;
    }
    let toolchain = match guest_command("rustup", guests)
        .args(["show", "active-toolchain"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => match String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
        {
            Some(name) if out.status.success() => name.to_string(),
            _ => fail(&format!(
                "the {TARGET} target is not installed for the Rust toolchain at {}, and `rustup show active-toolchain` cannot name it ({}); run `rustup target add {TARGET}` in {}",
                sysroot.display(),
                tool_message(&out.stderr),
                guests.display()
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(&format!(
            "the {TARGET} target is not installed for the Rust toolchain at {}, and there is no rustup on PATH to install it; run `rustup target add {TARGET}` once rustup is installed (https://rustup.rs), or add the target with whatever installed that toolchain",
            sysroot.display()
        )),
        Err(e) => fail(&format!("cannot run `rustup show active-toolchain`: {e}")),
    };
    let add = format!("rustup target add {TARGET} --toolchain {toolchain}");
    match guest_command("rustup", guests)
        .args(["target", "add", TARGET, "--toolchain", &toolchain])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => fail(&format!(
            "cannot install the {TARGET} target: `{add}` failed ({}): {}",
            out.status,
            tool_message(&out.stderr)
        )),
        Err(e) => fail(&format!("cannot run `{add}`: {e}")),
    }
    if !has_target() {
        fail(&format!(
            "`{add}` succeeded, but the Rust toolchain that builds the guests ({}) still has no {TARGET} target; add the target to that toolchain",
            sysroot.display()
        ));
    }
    println!("cargo:warning=installed the missing {TARGET} target: {add}");
}

/// What a failed rustc or rustup said, on one line: its lines other than progress
/// (`info:`), joined with "; ".
fn tool_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("info:"))
        .take(4)
        .collect();
    if lines.is_empty() {
        return "it printed no reason".to_string();
    }
    let joined = lines.join("; ");
    joined
        .strip_prefix("error: ")
        .unwrap_or(&joined)
        .to_string()
}

fn env_var(key: &str) -> String {
    env::var(key).unwrap_or_else(|_| fail(&format!("{key} is not set: run this through cargo")))
}

fn utf8(path: &Path) -> &str {
    path.to_str().unwrap_or_else(|| {
        fail(&format!(
            "{} is not UTF-8; the tests need a checkout at a UTF-8 path",
            path.display()
        ))
    })
}

/// Ends the build with one line on stderr, which cargo shows under the build script's output.
fn fail(message: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "error: {message}");
    std::process::exit(1);
}
