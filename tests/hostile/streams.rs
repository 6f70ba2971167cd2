//! Class 2: output streams that fail. With stderr or stdout closed, on a full disk
//! (/dev/full) or a pipe nobody reads, a guest that logs must not crash the host, and the
//! command ends with a status, never a panic or an abort.

use std::process::{Command, Output, Stdio};

use crate::common::*;

/// Where a stream of the `membrane` process goes.
#[derive(Clone, Copy, Debug)]
enum Broken {
    Closed,
    Full,
    Pipe,
}

const ALL: [Broken; 3] = [Broken::Closed, Broken::Full, Broken::Pipe];

/// Runs `membrane args` with stream `fd` (1 or 2) broken as `how`; the other stream is
/// captured.
fn run_broken(fd: u32, how: Broken, args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_membrane");
    let mut cmd = match how {
        Broken::Closed => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("exec \"$0\" \"$@\" {fd}>&-"))
                .arg(bin)
                .args(args);
            c
        }
        Broken::Full | Broken::Pipe => {
            let mut c = Command::new(bin);
            c.args(args);
            c
        }
    };
    cmd.env("MEMBRANE_CACHE_DIR", cache_dir())
        .env("MEMBRANE_RUNTIME_DIR", runtime_dir())
        .env_remove("MEMBRANE_LOG")
        .stdin(Stdio::null());
    let target = || -> Stdio {
        match how {
            Broken::Full => std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap()
                .into(),
            Broken::Pipe => {
                // Nobody will ever read: the read end is closed before the child starts.
                let (reader, writer) = std::io::pipe().unwrap();
                drop(reader);
                writer.into()
            }
            Broken::Closed => Stdio::inherit(),
        }
    };
    if fd == 1 {
        cmd.stdout(target()).stderr(Stdio::piped());
    } else {
        cmd.stderr(target()).stdout(Stdio::piped());
    }
    cmd.output().expect("membrane runs")
}

fn never_crashed(o: &Output, what: &str) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), None, "{what}: killed by a signal");
    assert_ne!(
        o.status.code(),
        Some(101),
        "{what}: panicked: {}",
        stderr(o)
    );
    assert_ne!(o.status.code(), Some(134), "{what}: aborted");
    // A host panic starts a line; a guest's panic message is only ever inside a log field.
    assert!(
        !stderr(o).lines().any(|l| l.starts_with("thread '")),
        "{what}: {}",
        stderr(o)
    );
}

fn log_manifest(dir: &std::path::Path) -> std::path::PathBuf {
    write_manifest(
        dir,
        &format!(
            "[app]\nentry = \"cli\"\n[modules.cli]\ncomponent = {:?}\n[modules.p]\ncomponent = {:?}\n",
            guests::CLI_PROBE,
            guests::PROBE
        ),
    )
}

#[test]
fn a_guest_logging_to_a_broken_stderr_cannot_crash_run_or_call() {
    let tmp = tempfile::tempdir().unwrap();
    let m = log_manifest(tmp.path());
    let m = m.to_str().unwrap();
    for how in ALL {
        // `run`: the guest writes lines to its stdout, which the log route sends to stderr.
        let o = run_broken(2, how, &["run", m, "--", "lines", "100"]);
        never_crashed(&o, &format!("run, stderr {how:?}"));
        assert_eq!(o.status.code(), Some(0), "run, stderr {how:?}");
        // `call`: the guest logs on both streams, the result still arrives on stdout.
        let text = "line one\nline two\n".repeat(50);
        let o = run_broken(
            2,
            how,
            &[
                "call",
                m,
                "p",
                &format!("{CAPS}#print"),
                &format!("{text:?}"),
                "true",
            ],
        );
        never_crashed(&o, &format!("call, stderr {how:?}"));
        assert_eq!(o.status.code(), Some(0), "call, stderr {how:?}");
        let o = run_broken(
            2,
            how,
            &["call", m, "p", &format!("{CAPS}#length"), "\"abc\""],
        );
        assert_eq!(stdout(&o), "3\n", "call, stderr {how:?}");
        // An error report to a broken stderr is lost, but the status says it.
        let o = run_broken(2, how, &["call", m, "p", &format!("{CAPS}#panic"), "\"x\""]);
        never_crashed(&o, &format!("failing call, stderr {how:?}"));
        assert_eq!(o.status.code(), Some(1), "failing call, stderr {how:?}");
    }
}

#[test]
fn results_to_a_broken_stdout_end_quietly_with_a_status() {
    let tmp = tempfile::tempdir().unwrap();
    let m = log_manifest(tmp.path());
    let m = m.to_str().unwrap();
    for how in ALL {
        let o = run_broken(
            1,
            how,
            &["call", m, "p", &format!("{CAPS}#length"), "\"abc\""],
        );
        never_crashed(&o, &format!("call, stdout {how:?}"));
        match how {
            // Rust's runtime reopens a closed stdout on /dev/null before `main`: the results
            // go where `>/dev/null` would send them.
            Broken::Closed => assert_eq!(o.status.code(), Some(0)),
            // As a shell reports a process killed by SIGPIPE, and nothing printed.
            Broken::Pipe => {
                assert_eq!(o.status.code(), Some(141));
                assert_eq!(stderr(&o), "");
            }
            Broken::Full => {
                assert_eq!(o.status.code(), Some(1));
                assert!(
                    stderr(&o).contains("cannot write the results"),
                    "{}",
                    stderr(&o)
                );
            }
        }
        // Other commands that print: inspect, graph, check.
        for args in [
            vec!["inspect", guests::PROBE],
            vec!["graph", m],
            vec!["check", m],
        ] {
            let o = run_broken(1, how, &args);
            never_crashed(&o, &format!("{args:?}, stdout {how:?}"));
            if !matches!(how, Broken::Closed) {
                assert_ne!(o.status.code(), Some(0), "{args:?}, stdout {how:?}");
            }
        }
        // The guest writing to the host's own stdout (`inherit`) gets an error, not the host.
        let inherit = tmp.path().join("inherit");
        std::fs::create_dir_all(&inherit).unwrap();
        let mi = write_manifest(
            &inherit,
            &format!(
                "[modules.cli]\ncomponent = {:?}\ngrants = {{ stdout = \"inherit\" }}\n",
                guests::CLI_PROBE
            ),
        );
        let o = run_broken(1, how, &["run", mi.to_str().unwrap(), "--", "lines", "10"]);
        never_crashed(&o, &format!("run inherit, stdout {how:?}"));
    }
}
