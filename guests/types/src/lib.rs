//! Echoes every kind of component-model value so the host's value handling can be checked.

wit_bindgen::generate!({ path: "../../wit/types", world: "types" });

use exports::membrane_test::types::echo::{Color, Guest as Echo, Perms, Point, Shape};

struct Types;

impl Guest for Types {
    fn hello(name: String) -> String {
        format!("hello, {name}")
    }
}

impl Echo for Types {
    fn echo_string(s: String) -> String {
        s
    }
    fn echo_point(p: Point) -> Point {
        Point {
            x: p.x + 1,
            y: p.y + 1,
            label: p.label,
        }
    }
    fn sum(xs: Vec<i64>) -> i64 {
        xs.iter().sum()
    }
    fn find(xs: Vec<String>, needle: String) -> Option<u32> {
        xs.iter().position(|x| *x == needle).map(|i| i as u32)
    }
    fn parse_u32(s: String) -> Result<u32, String> {
        s.parse().map_err(|e| format!("{s:?}: {e}"))
    }
    fn area(s: Shape) -> u64 {
        match s {
            Shape::Circle(r) => 3 * (r as u64) * (r as u64),
            Shape::Rect((w, h)) => w as u64 * h as u64,
            Shape::Empty => 0,
        }
    }
    fn next_color(c: Color) -> Color {
        match c {
            Color::Red => Color::Green,
            Color::Green => Color::Blue,
            Color::Blue => Color::Red,
        }
    }
    fn toggle_write(p: Perms) -> Perms {
        p ^ Perms::WRITE
    }
    fn swap(t: (String, u8)) -> (u8, String) {
        (t.1, t.0)
    }
    fn scale(x: f64, by: f32) -> f64 {
        x * by as f64
    }
    fn upper(c: char) -> char {
        c.to_ascii_uppercase()
    }
    fn nothing() {}
    fn mirror_shape(s: Shape) -> Shape {
        match s {
            Shape::Rect((w, h)) => Shape::Rect((h, w)),
            other => other,
        }
    }
    fn invert(b: bool) -> bool {
        !b
    }
    fn maybe(x: Option<Option<u32>>) -> Option<Option<u32>> {
        x.map(|inner| inner.map(|n| n.wrapping_add(1)))
    }
    fn nested(r: Result<Result<u32, String>, String>) -> Result<Result<u32, String>, String> {
        match r {
            Ok(Ok(n)) => Ok(Ok(n.wrapping_mul(2))),
            Ok(Err(e)) => Ok(Err(e.to_uppercase())),
            Err(e) => Err(format!("{e}!")),
        }
    }
    fn bytes(b: Vec<u8>) -> Vec<u8> {
        b.into_iter().rev().collect()
    }
}

export!(Types);
