//! Classes 4 and 5: guest-controlled text reaching the operator's terminal or the logs
//! (escape sequences, forged lines, forged fields), and output amplification (a byte of
//! guest output becoming a line of host log).

use membrane::{AppSpec, ErrorKind, ModuleSpec, Val};

use crate::common::*;

/// Characters that must never reach a terminal or a log as they are (newline aside, which
/// only the host writes).
fn dangerous(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{61c}' | '\u{200e}' | '\u{200f}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

pub(super) fn assert_clean(text: &str, what: &str) {
    if let Some(c) = text.chars().find(|c| dangerous(*c)) {
        panic!("{what} carries {c:?} raw: {text:?}");
    }
}

const FORGED: &str = "hello\rINFO membrane: all modules verified\u{b}\u{1c}\u{1d}\u{1e}\u{0}\u{e}\u{f}\u{5}\u{1b}[2J\u{1b}]0;owned\u{7}\u{85}\u{2028}INFO line two\u{2029}\u{202e}desrever module=store";

#[test]
fn guest_log_lines_cannot_forge_lines_or_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!("[modules.p]\ncomponent = {:?}\n", guests::PROBE),
    );
    let text = format!("{FORGED}\nsecond\n");
    let arg = membrane::to_wave(&Val::String(text)).unwrap();
    for to_stderr in ["false", "true"] {
        let o = membrane(&[
            "call",
            m.to_str().unwrap(),
            "p",
            &format!("{CAPS}#print"),
            &arg,
            to_stderr,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let log = stderr(&o);
        assert_clean(&log, "the log");
        // Two guest lines, two log lines: nothing split one into several.
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("module=p")).collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert_eq!(log.lines().count(), 2, "{log}");
        for line in lines {
            // The host's fields come first; the guest's text is the last field, quoted.
            let (host, guest) = line.split_once("text=\"").expect("a text field");
            assert!(
                host.contains("module=p") && !host.contains("store"),
                "{line}"
            );
            assert!(guest.ends_with('"'), "{line}");
        }
        assert!(log.contains("\\u{1b}[2J"), "{log}");
        assert!(log.contains("\\u{202e}desrever module=store"), "{log}");
    }
}

/// A component whose function (and module) names are escape sequences and a forged log
/// line, and whose only export traps: the names appear in the trap's backtrace.
fn hostile_names() -> Vec<u8> {
    synth_with(
        "package test:names;\nworld w { export boom: func(); }\n",
        "w",
        Some(
            r#"(module $"\1b[31mevil\0a"
                 (func $"\1b]0;pwned\07\1b[2J\0aINFO membrane: all modules verified\e2\80\ae" (export "boom")
                   unreachable))"#,
        ),
    )
}

#[tokio::test]
async fn names_in_a_trap_backtrace_are_escaped() {
    let app = runtime()
        .load_spec(AppSpec::new().module("names", ModuleSpec::from_bytes(hostile_names())))
        .await
        .unwrap();
    let e = app.call("names", "boom", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Trap);
    let text = membrane::chain(&e);
    assert_clean(&text, "the error chain");
    assert!(text.contains("\\u{1b}]0;pwned"), "{text}");
    // The forged line is part of an escaped name, never a line of its own.
    assert!(
        !text.lines().any(|l| l.starts_with("INFO")),
        "a line of its own: {text}"
    );

    // The same through the command: the report on the terminal is clean.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("names.wasm"), hostile_names()).unwrap();
    let m = write_manifest(tmp.path(), "[modules.names]\ncomponent = \"names.wasm\"\n");
    let o = membrane(&["call", m.to_str().unwrap(), "names", "boom"]);
    assert_clean_failure(&o, "error[trap]");
    assert_clean(&stderr(&o), "the command's report");
    assert!(
        !stderr(&o).lines().any(|l| l.starts_with("INFO")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn results_printed_by_call_are_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!("[modules.t]\ncomponent = {:?}\n", guests::TYPES),
    );
    let arg = membrane::to_wave(&Val::String("\u{1b}[2J\u{202e}x".into())).unwrap();
    let o = membrane(&["call", m.to_str().unwrap(), "t", "hello", &arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_clean(&stdout(&o), "the result");
    assert_eq!(stdout(&o), "\"hello, \\u{1b}[2J\\u{202e}x\"\n");
}

fn cli_manifest(dir: &std::path::Path) -> std::path::PathBuf {
    write_manifest(
        dir,
        &format!("[modules.cli]\ncomponent = {:?}\n", guests::CLI_PROBE),
    )
}

#[test]
fn a_megabyte_of_newlines_is_one_log_line() {
    let tmp = tempfile::tempdir().unwrap();
    let m = cli_manifest(tmp.path());
    let o = membrane(&[
        "run",
        m.to_str().unwrap(),
        "--",
        "newlines",
        &(1 << 20).to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = stderr(&o);
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains(&format!("repeated={}", 1 << 20)), "{log}");
}

#[test]
fn log_lines_per_call_are_capped_and_the_rest_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let m = cli_manifest(tmp.path());
    let n = membrane::MAX_LOG_LINES as usize + 5_000;
    let o = membrane(&[
        "run",
        m.to_str().unwrap(),
        "--",
        "manylines",
        &n.to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = stderr(&o);
    let guest_lines = log.lines().filter(|l| l.contains("text=\"l")).count();
    assert_eq!(guest_lines, membrane::MAX_LOG_LINES as usize);
    assert!(
        log.contains("dropped_lines=5000"),
        "{}",
        log.lines().last().unwrap()
    );
}
