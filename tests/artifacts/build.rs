//! Builds every guest under `guests/` for wasm32-wasip2 and writes a constant with the
//! path of each component, so tests never depend on a committed binary.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

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
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
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
        println!("cargo:rerun-if-changed={}", guests.join(g).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    check_target(&root);
    let target_dir = guests.join("target");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&guests)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--workspace",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings are for the host, not for the guests.
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
    let status = cmd.status().expect("cannot run cargo to build the guests");
    if !status.success() {
        panic!(
            "building the guests failed ({status}); run `cargo build --release --target wasm32-wasip2` in guests/ to see why"
        );
    }

    let out = target_dir.join("wasm32-wasip2").join("release");
    let mut code = String::new();
    for g in GUESTS {
        let path = out.join(format!("{g}.wasm"));
        assert!(
            path.exists(),
            "guest {g} was built but {} is missing",
            path.display()
        );
        writeln!(
            code,
            "/// The `{g}` guest component, built from guests/{g}."
        )
        .unwrap();
        writeln!(
            code,
            "pub const {}: &str = {:?};",
            g.to_uppercase(),
            path.to_str().unwrap()
        )
        .unwrap();
    }
    writeln!(code, "/// The repository root.").unwrap();
    writeln!(code, "pub const ROOT: &str = {:?};", root.to_str().unwrap()).unwrap();
    let dest = PathBuf::from(env::var_os("OUT_DIR").unwrap()).join("guests.rs");
    std::fs::write(dest, code).unwrap();
}

/// Stops with the exact command to run when the wasm target is missing.
fn check_target(root: &Path) {
    let rustc = Command::new("rustc")
        .current_dir(root.join("guests"))
        .args(["--print", "sysroot"])
        .output();
    if let Ok(out) = rustc {
        let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if !sysroot.join("lib/rustlib/wasm32-wasip2").exists() {
            panic!(
                "the wasm32-wasip2 target is not installed for {}; run: rustup target add wasm32-wasip2",
                sysroot.display()
            );
        }
    }
}
