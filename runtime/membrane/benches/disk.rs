//! The cost of disk quotas: a guest writing 64 MiB in 64 KiB pieces and creating 2,000
//! files, under a read-write grant without a quota and with one (far from its limit), and
//! the cost of one measurement of a grant's tree, in /dev/shm. A plain harness:
//! `cargo bench -p membrane --bench disk`. BENCHMARKS.md has the figures.
#![allow(missing_docs)] // criterion_group! defines undocumented public functions

mod common;

use std::time::{Duration, Instant};

use common::*;
use membrane::{AppSpec, Config, DirMode, Lifecycle, ModuleSpec, Runtime, Val};

const CAPS: &str = "membrane-test:probe/caps";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A directory in memory when the machine has /dev/shm: on a disk file system, creating
/// thousands of files costs milliseconds in the kernel's inode allocator and hides the
/// host's share.
fn scratch() -> tempfile::TempDir {
    if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

fn app(tokio: &tokio::runtime::Runtime, dir: &std::path::Path, quota: bool) -> membrane::App {
    let mut m = ModuleSpec::from_file(guests::PROBE)
        .dir(dir, "/data", DirMode::ReadWrite)
        .lifecycle(Lifecycle::PerCall)
        .timeout(Duration::from_secs(60));
    if quota {
        m = m.quota("/data", Some(64 << 30), Some(10_000_000));
    }
    let rt = Runtime::new(Config::default()).unwrap();
    tokio
        .block_on(rt.load_spec(AppSpec::new().module("m", m)))
        .unwrap()
}

fn call(tokio: &tokio::runtime::Runtime, app: &membrane::App, func: &str, args: &[Val]) {
    let out = tokio
        .block_on(app.call("m", &format!("{CAPS}#{func}"), args))
        .unwrap();
    assert!(matches!(out[0], Val::Result(Ok(_))), "{func}: {out:?}");
}

fn main() {
    let tokio = tokio_rt();
    let runs = 7;
    // The two arms alternate, and written files are removed at once, so that both see the
    // same file-system state (dirty pages being written back slow everything down).
    let dirs = [scratch(), scratch()];
    let apps = [
        app(&tokio, dirs[0].path(), false),
        app(&tokio, dirs[1].path(), true),
    ];
    let mut writes = [Vec::new(), Vec::new()];
    let mut creates = [Vec::new(), Vec::new()];
    for i in 0..runs {
        for arm in 0..2 {
            let start = Instant::now();
            call(
                &tokio,
                &apps[arm],
                "write-bytes",
                &[Val::String(format!("/data/w{i}")), Val::U64(64 << 20)],
            );
            writes[arm].push(start.elapsed());
            std::fs::remove_file(dirs[arm].path().join(format!("w{i}"))).unwrap();
            std::fs::create_dir(dirs[arm].path().join(format!("d{i}"))).unwrap();
            let start = Instant::now();
            call(
                &tokio,
                &apps[arm],
                "create-files",
                &[Val::String(format!("/data/d{i}")), Val::U32(2_000)],
            );
            creates[arm].push(start.elapsed());
        }
    }
    for (arm, label) in ["no quota", "with quota"].iter().enumerate() {
        let w = median(std::mem::take(&mut writes[arm]));
        println!(
            "write 64 MiB in 64 KiB pieces, {label}: median {w:?} ({:.0} MiB/s)",
            64.0 / w.as_secs_f64()
        );
        println!(
            "create 2,000 files, {label}: median {:?}",
            median(std::mem::take(&mut creates[arm]))
        );
    }
    // One measurement of a tree of 20,000 files (what a write near the quota costs).
    let dir = scratch();
    for d in 0..20 {
        let sub = dir.path().join(format!("d{d}"));
        std::fs::create_dir(&sub).unwrap();
        for f in 0..1000 {
            std::fs::write(sub.join(format!("f{f}")), b"x").unwrap();
        }
    }
    // The first write of an app measures the tree; the second uses the count.
    let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let m = ModuleSpec::from_file(guests::PROBE)
            .dir(dir.path(), "/data", DirMode::ReadWrite)
            .quota("/data", Some(1 << 40), None)
            .timeout(Duration::from_secs(60));
        let rt = Runtime::new(Config::default()).unwrap();
        let app = tokio
            .block_on(rt.load_spec(AppSpec::new().module("m", m)))
            .unwrap();
        for (j, times) in [&mut firsts, &mut seconds].into_iter().enumerate() {
            let start = Instant::now();
            call(
                &tokio,
                &app,
                "write-bytes",
                &[Val::String(format!("/data/t{i}-{j}")), Val::U64(1)],
            );
            times.push(start.elapsed());
        }
    }
    println!(
        "a 1-byte write under a quota'd grant of 20,000 files: first (measures the tree) median {:?}, second median {:?}",
        median(firsts),
        median(seconds)
    );
}
