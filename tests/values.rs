//! Values of every kind through the API, and the export name forms.

use membrane::{ModuleSpec, Val};

use crate::common::*;

const ECHO: &str = "membrane-test:types/echo";

async fn types_app() -> membrane::App {
    app_of(ModuleSpec::from_file(guests::TYPES)).await
}

/// Calls `func` with WAVE arguments and returns the WAVE result.
async fn wave(app: &membrane::App, func: &str, args: &[&str]) -> String {
    let f = app.function("m", func).unwrap();
    let vals = f.parse_args(args).unwrap();
    let out = app.call("m", func, &vals).await.unwrap();
    out.iter()
        .map(|v| membrane::to_wave(v).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn every_kind_of_value_round_trips() {
    let app = types_app().await;
    let cases: &[(&str, &[&str], &str)] = &[
        ("echo-string", &[r#""héllo ☃""#], r#""héllo ☃""#),
        (
            "echo-point",
            &[r#"{x: 1, y: -2, label: "p"}"#],
            r#"{x: 2, y: -1, label: "p"}"#,
        ),
        ("sum", &["[1, 2, 3, -10]"], "-4"),
        ("find", &[r#"["a", "b"]"#, r#""b""#], "some(1)"),
        ("find", &[r#"["a"]"#, r#""z""#], "none"),
        ("parse-u32", &[r#""42""#], "ok(42)"),
        (
            "parse-u32",
            &[r#""x""#],
            r#"err("\"x\": invalid digit found in string")"#,
        ),
        ("area", &["rect((3, 4))"], "12"),
        ("area", &["empty"], "0"),
        ("next-color", &["blue"], "red"),
        ("toggle-write", &["{read, write}"], "{read}"),
        ("swap", &[r#"("a", 7)"#], r#"(7, "a")"#),
        ("scale", &["1.5", "2"], "3"),
        ("upper", &["'q'"], "'Q'"),
        ("nothing", &[], ""),
    ];
    for (func, args, expected) in cases {
        let got = wave(&app, &format!("{ECHO}#{func}"), args).await;
        assert_eq!(&got, expected, "{func}{args:?}");
    }
}

#[tokio::test]
async fn export_name_forms() {
    let app = types_app().await;
    assert_eq!(wave(&app, "hello", &[r#""you""#]).await, r#""hello, you""#);
    assert_eq!(
        wave(&app, &format!("{ECHO}@0.1.0#upper"), &["'a'"]).await,
        "'A'"
    );
    let f = app.function("m", &format!("{ECHO}#upper")).unwrap();
    assert_eq!(f.name(), format!("{ECHO}@0.1.0#upper"));
    let e = app
        .function("m", &format!("{ECHO}@1.0.0#upper"))
        .unwrap_err();
    assert_eq!(e.kind(), membrane::ErrorKind::NotFound);
}

#[tokio::test]
async fn wave_errors_name_the_parameter() {
    let app = types_app().await;
    let f = app.function("m", &format!("{ECHO}#echo-point")).unwrap();
    let e = f.parse_args(&["{x: 1}"]).unwrap_err();
    assert_eq!(e.kind(), membrane::ErrorKind::InvalidArgs);
    assert_eq!(e.export(), Some(f.name()));
    assert!(e.message().contains("argument `p`"), "{e}");
    let e = f.parse_args::<&str>(&[]).unwrap_err();
    assert_eq!(e.kind(), membrane::ErrorKind::InvalidArgs);
    assert_eq!(e.export(), Some(f.name()));
    let e = app
        .call(
            "m",
            &format!("{ECHO}#echo-point"),
            &[Val::Record(vec![("x".into(), Val::S32(1))])],
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), membrane::ErrorKind::InvalidArgs);
}

#[tokio::test]
async fn concurrent_calls_each_get_an_instance() {
    let app = types_app().await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let out = app
                .call(
                    "m",
                    &format!("{ECHO}#sum"),
                    &[Val::List(vec![Val::S64(i), Val::S64(1)])],
                )
                .await
                .unwrap();
            assert_eq!(out[0], Val::S64(i + 1));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn blocking_calls_from_sync_code() {
    let app = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(types_app());
    let out = app.call_blocking("m", "hello", &[s("sync")]).unwrap();
    assert_eq!(out[0], s("hello, sync"));
    let e = app.call_blocking("m", "hello", &[Val::U8(1)]).unwrap_err();
    assert_eq!(e.kind(), membrane::ErrorKind::InvalidArgs);
}
