//! The common signatures that calls take without `Val`s: one table for the three places
//! that dispatch on it — linked functions (`trampoline.rs`), resource methods (`methods.rs`,
//! after their `borrow` receiver) and the worker's calls of its exports (membrane-process's
//! `typed.rs`). Each place matches a signature's [`key`] against the table with its own
//! generic function; a signature not in the table goes the dynamic way.
//!
//! The table holds what interfaces most often use: no parameter, one or two primitives
//! (integers, floats, bools, strings, byte lists) and at most one result. Every shape costs a
//! copy of each place's generic function in the binary, so shapes are added when a
//! benchmark or a user's interface shows the dynamic path, not speculatively.

use wasmtime::component::types::Type;

/// One primitive of a common signature, as it is spelled in a [`key`].
fn short(ty: &Type) -> Option<&'static str> {
    Some(match ty {
        Type::Bool => "bool",
        Type::U32 => "u32",
        Type::U64 => "u64",
        Type::S32 => "s32",
        Type::S64 => "s64",
        Type::Float32 => "f32",
        Type::Float64 => "f64",
        Type::String => "string",
        Type::List(l) if l.ty() == Type::U8 => "bytes",
        _ => return None,
    })
}

/// The signature as `p1,p2->r`, when every part is a primitive of the list; whether it is
/// one of the table's shapes is for the table's `match` to say.
pub fn key(params: &[Type], results: &[Type]) -> Option<String> {
    let p: Option<Vec<&str>> = params.iter().map(short).collect();
    let r: Option<Vec<&str>> = results.iter().map(short).collect();
    Some(format!("{}->{}", p?.join(","), r?.join(",")))
}

/// Calls `$dispatch! { "key" => (P...) -> (R...), ... }` with every shape of the table:
/// `$dispatch` is a place's own macro that turns the list into a `match` on the key.
#[macro_export]
macro_rules! for_each_shape {
    ($dispatch:ident) => {
        $dispatch! {
            "->" => () -> (),
            "->u32" => () -> (u32),
            "->u64" => () -> (u64),
            "->s64" => () -> (i64),
            "->bool" => () -> (bool),
            "->string" => () -> (String),
            "->bytes" => () -> (Vec<u8>),
            "u32->" => (u32) -> (),
            "u64->" => (u64) -> (),
            "u32->u32" => (u32) -> (u32),
            "u64->u64" => (u64) -> (u64),
            "s32->s32" => (i32) -> (i32),
            "s64->s64" => (i64) -> (i64),
            "f64->f64" => (f64) -> (f64),
            "u32,u32->u32" => (u32, u32) -> (u32),
            "u64,u64->u64" => (u64, u64) -> (u64),
            "s32,s32->s32" => (i32, i32) -> (i32),
            "s64,s64->s64" => (i64, i64) -> (i64),
            "f64,f64->f64" => (f64, f64) -> (f64),
            "string->" => (String) -> (),
            "string->string" => (String) -> (String),
            "string->u32" => (String) -> (u32),
            "string->u64" => (String) -> (u64),
            "string->bool" => (String) -> (bool),
            "string->bytes" => (String) -> (Vec<u8>),
            "string,string->" => (String, String) -> (),
            "string,string->string" => (String, String) -> (String),
            "string,bytes->" => (String, Vec<u8>) -> (),
            "bytes->" => (Vec<u8>) -> (),
            "bytes->u64" => (Vec<u8>) -> (u64),
            "bytes->bytes" => (Vec<u8>) -> (Vec<u8>),
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_signatures() {
        assert_eq!(key(&[Type::U64], &[Type::U64]).as_deref(), Some("u64->u64"));
        assert_eq!(key(&[], &[]).as_deref(), Some("->"));
        assert_eq!(
            key(&[Type::String, Type::String], &[Type::String]).as_deref(),
            Some("string,string->string")
        );
        assert_eq!(key(&[Type::Char], &[]), None);
    }

    /// Every key of the table is one [`key`] can produce, and none is listed twice.
    #[test]
    fn the_table_is_well_formed() {
        macro_rules! keys {
            ($($k:literal => ($($p:ty),*) -> ($($r:ty),*)),* $(,)?) => { [$($k),*] };
        }
        let keys = for_each_shape!(keys);
        let names = [
            "bool", "u32", "u64", "s32", "s64", "f32", "f64", "string", "bytes",
        ];
        let mut seen = std::collections::BTreeSet::new();
        for k in keys {
            assert!(seen.insert(k), "{k} twice");
            let (p, r) = k.split_once("->").unwrap();
            for part in p.split(',').chain(r.split(',')).filter(|s| !s.is_empty()) {
                assert!(names.contains(&part), "{k}: {part}");
            }
        }
    }
}
