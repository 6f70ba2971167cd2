//! Standard streams through the CLI: routes, line splitting, caps, stdin, exit codes.

use crate::common::*;

fn manifest_for(dir: &std::path::Path, stdout: &str, stderr: &str) -> std::path::PathBuf {
    write_manifest(
        dir,
        &format!(
            "[modules.cli]\ncomponent = {:?}\n[modules.cli.grants]\nstdout = {stdout:?}\nstderr = {stderr:?}\n",
            guests::CLI_PROBE
        ),
    )
}

#[test]
fn log_route_tags_lines_with_the_module_and_caps_them() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest_for(tmp.path(), "log", "log");
    let long = (membrane::MAX_LINE * 2).to_string();
    let o = membrane(&["run", m.to_str().unwrap(), "--", "lines", &long]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "", "log route must not write to stdout");
    let log = stderr(&o);
    for i in 0..3 {
        assert!(log.contains(&format!("line {i}")), "{log}");
    }
    assert!(log.contains("module=cli"), "{log}");
    assert!(log.contains("stream=\"stdout\""), "{log}");
    // The guest's text is the last field, quoted.
    assert!(log.contains("text=\"line 0\""), "{log}");
    let longest = log
        .lines()
        .filter_map(|l| l.split_once("text=\""))
        .map(|(_, text)| text.matches('x').count())
        .max()
        .unwrap();
    assert_eq!(longest, membrane::MAX_LINE, "{log}");
    assert!(
        log.contains(&format!("cut={}", membrane::MAX_LINE)),
        "{log}"
    );
}

#[test]
fn inherit_and_discard_routes() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest_for(tmp.path(), "inherit", "discard");
    let o = membrane(&["run", m.to_str().unwrap(), "--", "args", "a", "b"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "a,b\n");
    let o = membrane(&["run", m.to_str().unwrap(), "--", "stderr", "hidden-text"]);
    assert!(o.status.success());
    assert!(!stderr(&o).contains("hidden-text"), "{}", stderr(&o));
    // A line written in pieces (eprintln! flushes each) is still one line in the log.
    let m = manifest_for(tmp.path(), "discard", "log");
    let o = membrane(&["run", m.to_str().unwrap(), "--", "stderr", "one whole line"]);
    assert!(o.status.success());
    assert_eq!(
        stderr(&o).matches("one whole line").count(),
        1,
        "{}",
        stderr(&o)
    );
}

#[test]
fn exit_status_is_propagated() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest_for(tmp.path(), "inherit", "inherit");
    // WASI 0.2's exit carries success or failure only, so every non-zero status is 1.
    let o = membrane(&["run", m.to_str().unwrap(), "--", "exit", "7"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = membrane(&["run", m.to_str().unwrap(), "--", "unknown-command"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = membrane(&["run", m.to_str().unwrap(), "--", "exit", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The guest's own panic message goes to its stderr, discarded here.
    let m = manifest_for(tmp.path(), "inherit", "discard");
    let o = membrane(&["run", m.to_str().unwrap(), "--", "panic"]);
    assert_clean_failure(&o, "trap");
}

#[test]
fn the_run_entry_reads_stdin() {
    use std::io::Write;
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest_for(tmp.path(), "inherit", "inherit");
    let mut child = membrane_command()
        .args(["run", m.to_str().unwrap(), "--", "stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from the host")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "stdin: \"from the host\"\n");
}

#[test]
fn run_of_a_bare_component_with_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let o = membrane(&[
        "run",
        guests::CLI_PROBE,
        "--env",
        "WHO=tester",
        "--",
        "env",
        "WHO",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let _ = tmp;
    // A bare component's output is the command's own, as a program's would be.
    assert!(stdout(&o).contains("tester"), "{}", stdout(&o));
    assert!(!stderr(&o).contains("tester"), "{}", stderr(&o));
    // With --log-output, log lines on stderr, as a manifest module's.
    let o = membrane(&[
        "run",
        guests::CLI_PROBE,
        "--env",
        "WHO=tester",
        "--log-output",
        "--",
        "env",
        "WHO",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(stderr(&o).contains("stream=\"stdout\""), "{}", stderr(&o));
    assert!(stderr(&o).contains("tester"), "{}", stderr(&o));
    let o = membrane(&["run", guests::CLI_PROBE, "--dir", "nocolons"]);
    assert_clean_failure(&o, "HOST::GUEST");
    let o = membrane(&["run", guests::CLI_PROBE, "--env", "=x"]);
    assert_clean_failure(&o, "KEY=VALUE");
}

#[test]
fn stdin_is_closed_for_calls() {
    use std::io::Write;
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!("[modules.p]\ncomponent = {:?}\n", guests::PROBE),
    );
    let mut child = membrane_command()
        .args([
            "call",
            m.to_str().unwrap(),
            "p",
            "membrane-test:probe/caps#read-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"not for you")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(stdout(&o), "ok(\"\")\n");
}

#[test]
fn a_looping_run_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.cli]\ncomponent = {:?}\nlimits = {{ timeout = \"300ms\" }}\n",
            guests::CLI_PROBE
        ),
    );
    let o = membrane(&["run", m.to_str().unwrap(), "--", "spin"]);
    assert_clean_failure(&o, "error[timeout]");
    assert!(stderr(&o).contains("300ms"), "{}", stderr(&o));
}
