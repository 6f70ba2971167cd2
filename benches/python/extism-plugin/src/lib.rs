//! The benchmarks' Extism plugin: the same work as the components the Membrane and
//! wasmtime-py rows call.
//!
//! - `add`: two u32, 8 bytes little-endian in, the u32 sum 4 bytes little-endian out (the
//!   cheapest encoding Extism's byte-buffer calls allow, the one the table uses);
//! - `add_json`: `{"a": 1, "b": 2}` in, `3` out (the idiom of Extism's examples, for scale);
//! - `echo`: a string in, the same string out.

use extism_pdk::*;
use serde::Deserialize;

#[plugin_fn]
pub fn add(input: Vec<u8>) -> FnResult<Vec<u8>> {
    let (a, b) = input.split_at_checked(4).ok_or_else(|| Error::msg("need 8 bytes"))?;
    let a = u32::from_le_bytes(a.try_into()?);
    let b = u32::from_le_bytes(b.try_into()?);
    Ok(a.wrapping_add(b).to_le_bytes().to_vec())
}

#[derive(Deserialize)]
struct Pair {
    a: u32,
    b: u32,
}

#[plugin_fn]
pub fn add_json(Json(p): Json<Pair>) -> FnResult<Json<u32>> {
    Ok(Json(p.a.wrapping_add(p.b)))
}

#[plugin_fn]
pub fn echo(s: String) -> FnResult<String> {
    Ok(s)
}
