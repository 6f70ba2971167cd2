//! Typed calls: every family of WIT types through a typed handle (async and blocking), and
//! a mismatch of each family refused at lookup with the export named.

use membrane::{ErrorKind, ModuleSpec};
use wasmtime::component::{ComponentType, Lift, Lower};

use crate::common::*;

const ECHO: &str = "membrane-test:types/echo";

#[derive(ComponentType, Lift, Lower, Debug, Clone, PartialEq)]
#[component(record)]
struct Point {
    x: i32,
    y: i32,
    label: String,
}

/// The same record with a field of another name: must not pass for `point`.
#[derive(ComponentType, Lift, Lower, Debug, Clone, PartialEq)]
#[component(record)]
struct NotAPoint {
    x: i32,
    z: i32,
    label: String,
}

#[derive(ComponentType, Lift, Lower, Debug, Clone, PartialEq)]
#[component(variant)]
enum Shape {
    #[component(name = "circle")]
    Circle(u32),
    #[component(name = "rect")]
    Rect((u32, u32)),
    #[component(name = "empty")]
    Empty,
}

#[derive(ComponentType, Lift, Lower, Debug, Clone, PartialEq)]
#[component(variant)]
enum NotAShape {
    #[component(name = "circle")]
    Circle(u64),
    #[component(name = "rect")]
    Rect((u32, u32)),
    #[component(name = "empty")]
    Empty,
}

#[derive(ComponentType, Lift, Lower, Debug, Clone, Copy, PartialEq)]
#[component(enum)]
#[repr(u8)]
enum Color {
    #[component(name = "red")]
    Red,
    #[component(name = "green")]
    Green,
    #[component(name = "blue")]
    Blue,
}

#[derive(ComponentType, Lift, Lower, Debug, Clone, Copy, PartialEq)]
#[component(enum)]
#[repr(u8)]
enum NotAColor {
    #[component(name = "red")]
    Red,
    #[component(name = "green")]
    Green,
}

wasmtime::component::flags! {
    Perms {
        #[component(name = "read")]
        const READ;
        #[component(name = "write")]
        const WRITE;
        #[component(name = "exec")]
        const EXEC;
    }
}

wasmtime::component::flags! {
    NotPerms {
        #[component(name = "read")]
        const READ;
        #[component(name = "write")]
        const WRITE;
    }
}

fn t<T>(r: membrane::Result<T>) -> membrane::Result<()> {
    r.map(|_| ())
}

async fn app() -> membrane::App {
    app_of(ModuleSpec::from_file(guests::TYPES)).await
}

fn f(name: &str) -> String {
    format!("{ECHO}#{name}")
}

#[tokio::test]
async fn every_family_through_a_typed_handle() {
    let app = app().await;
    let echo = app
        .typed::<(String,), (String,)>("m", &f("echo-string"))
        .unwrap();
    assert_eq!(echo.call(("héllo ☃".into(),)).await.unwrap().0, "héllo ☃");
    let p = Point {
        x: 1,
        y: -2,
        label: "p".into(),
    };
    let point = app
        .typed::<(Point,), (Point,)>("m", &f("echo-point"))
        .unwrap();
    let moved = point.call((p.clone(),)).await.unwrap().0;
    assert_eq!((moved.x, moved.y, moved.label), (2, -1, "p".into()));
    let sum = app.typed::<(Vec<i64>,), (i64,)>("m", &f("sum")).unwrap();
    assert_eq!(sum.call((vec![1, 2, 3, -10],)).await.unwrap().0, -4);
    let find = app
        .typed::<(Vec<String>, String), (Option<u32>,)>("m", &f("find"))
        .unwrap();
    let hay = vec!["a".to_string(), "b".to_string()];
    assert_eq!(
        find.call((hay.clone(), "b".into())).await.unwrap().0,
        Some(1)
    );
    assert_eq!(find.call((hay, "z".into())).await.unwrap().0, None);
    let parse = app
        .typed::<(String,), (Result<u32, String>,)>("m", &f("parse-u32"))
        .unwrap();
    assert_eq!(parse.call(("42".into(),)).await.unwrap().0, Ok(42));
    assert!(parse.call(("x".into(),)).await.unwrap().0.is_err());
    let area = app.typed::<(Shape,), (u64,)>("m", &f("area")).unwrap();
    assert_eq!(area.call((Shape::Rect((3, 4)),)).await.unwrap().0, 12);
    assert_eq!(area.call((Shape::Empty,)).await.unwrap().0, 0);
    let _ = Shape::Circle(1);
    let color = app
        .typed::<(Color,), (Color,)>("m", &f("next-color"))
        .unwrap();
    assert_eq!(color.call((Color::Blue,)).await.unwrap().0, Color::Red);
    let _ = Color::Green;
    let perms = app
        .typed::<(Perms,), (Perms,)>("m", &f("toggle-write"))
        .unwrap();
    assert_eq!(
        perms.call((Perms::READ,)).await.unwrap().0,
        Perms::READ | Perms::WRITE
    );
    let _ = Perms::EXEC;
    let swap = app
        .typed::<((String, u8),), ((u8, String),)>("m", &f("swap"))
        .unwrap();
    assert_eq!(
        swap.call((("s".into(), 7),)).await.unwrap().0,
        (7, "s".into())
    );
    let scale = app.typed::<(f64, f32), (f64,)>("m", &f("scale")).unwrap();
    assert_eq!(scale.call((1.5, 2.0)).await.unwrap().0, 3.0);
    let upper = app.typed::<(char,), (char,)>("m", &f("upper")).unwrap();
    assert_eq!(upper.call(('q',)).await.unwrap().0, 'Q');
    let nothing = app.typed::<(), ()>("m", &f("nothing")).unwrap();
    nothing.call(()).await.unwrap();
    let hello = app.typed::<(String,), (String,)>("m", "hello").unwrap();
    assert_eq!(hello.call(("x".into(),)).await.unwrap().0, "hello, x");

    // The same handles on the synchronous path.
    let (point, sum) = (point.clone(), sum.clone());
    let moved = tokio::task::spawn_blocking(move || {
        let s = sum.call_blocking((vec![5, 5],)).unwrap().0;
        (point.call_blocking((p,)).unwrap().0, s)
    })
    .await
    .unwrap();
    assert_eq!((moved.0.x, moved.1), (2, 10));
}

#[tokio::test]
async fn a_mismatch_of_each_family_is_refused_at_lookup() {
    let app = app().await;
    let expect = |r: membrane::Result<()>, export: &str| {
        let e = r.expect_err(export);
        assert_eq!(e.kind(), ErrorKind::InvalidArgs, "{export}: {e}");
        assert_eq!(e.module(), Some("m"));
        assert!(e.export().is_some_and(|x| x.ends_with(export)), "{e:?}");
    };
    expect(
        t(app.typed::<(u32,), (String,)>("m", &f("echo-string"))),
        "echo-string",
    );
    expect(
        t(app.typed::<(String,), (u32,)>("m", &f("echo-string"))),
        "echo-string",
    );
    expect(
        t(app.typed::<(NotAPoint,), (NotAPoint,)>("m", &f("echo-point"))),
        "echo-point",
    );
    expect(t(app.typed::<(Vec<u32>,), (i64,)>("m", &f("sum"))), "sum");
    expect(
        t(app.typed::<(Vec<String>, String), (Option<u64>,)>("m", &f("find"))),
        "find",
    );
    expect(
        t(app.typed::<(String,), (Result<u32, u32>,)>("m", &f("parse-u32"))),
        "parse-u32",
    );
    expect(
        t(app.typed::<(NotAShape,), (u64,)>("m", &f("area"))),
        "area",
    );
    expect(
        t(app.typed::<(NotAColor,), (NotAColor,)>("m", &f("next-color"))),
        "next-color",
    );
    expect(
        t(app.typed::<(NotPerms,), (NotPerms,)>("m", &f("toggle-write"))),
        "toggle-write",
    );
    expect(
        t(app.typed::<((u8, String),), ((u8, String),)>("m", &f("swap"))),
        "swap",
    );
    expect(
        t(app.typed::<(f32, f32), (f64,)>("m", &f("scale"))),
        "scale",
    );
    expect(
        t(app.typed::<(String,), (char,)>("m", &f("upper"))),
        "upper",
    );
    expect(t(app.typed::<(u8,), ()>("m", &f("nothing"))), "nothing");
    let _ = (NotAShape::Circle(0), NotAColor::Red, NotAColor::Green);
}
