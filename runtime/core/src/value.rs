//! Values crossing into a module: signatures, WAVE text, and checks before a call.
//!
//! Arguments are checked against the function's types before any guest code runs, so a
//! wrong argument is an [`ErrorKind::InvalidArgs`] error that names the parameter, never a
//! trap that would cost the instance.

use wasmtime::component::types::Type;
use wasmtime::component::{ComponentExportIndex, ResourceType, Val};

use crate::error::{Error, ErrorKind, Result};

/// An exported function: its full name and its parameter and result types.
#[derive(Debug)]
pub struct Function {
    /// Small and unique per module; indexes each instance's cache of function handles.
    pub id: usize,
    pub name: String,
    pub index: ComponentExportIndex,
    pub params: Vec<(String, Type)>,
    pub results: Vec<Type>,
    /// The function's counters, made on its first call.
    pub metrics: crate::metrics::FuncMetricsCell,
    /// `module/function`, the name of its call spans, made on the first exported one.
    pub span_name: std::sync::OnceLock<std::sync::Arc<str>>,
}

impl Function {
    /// The full export name, `ns:pkg/iface@version#func` or a root-level name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parameter names and types, in order.
    pub fn params(&self) -> &[(String, Type)] {
        &self.params
    }

    /// Result types (zero or one).
    pub fn results(&self) -> &[Type] {
        &self.results
    }

    /// Parses one WAVE text per parameter (`"hi"`, `42`, `{x: 1, y: 2}`, `some("a")`, `ok(3)`).
    pub fn parse_args<S: AsRef<str>>(&self, args: &[S]) -> Result<Vec<Val>> {
        if args.len() != self.params.len() {
            return Err(Error::new(
                ErrorKind::InvalidArgs,
                format!(
                    "{} takes {} argument(s) ({}), {} given",
                    self.name,
                    self.params.len(),
                    self.signature_params(),
                    args.len()
                ),
            )
            .with_export(&self.name));
        }
        self.params
            .iter()
            .zip(args)
            .map(|((name, ty), text)| {
                Val::from_wave(ty, text.as_ref()).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidArgs,
                        format!(
                            "{}: argument `{name}` ({}) is not valid WAVE for its type: {e}; \
                             write it like {} (in a shell, quote the whole value: '{}')",
                            self.name,
                            type_name(ty),
                            wave_example(ty),
                            wave_example(ty)
                        ),
                    )
                    .with_export(&self.name)
                })
            })
            .collect()
    }

    /// Checks values against the parameter types.
    pub fn check_args(&self, args: &[Val]) -> Result<()> {
        if args.len() != self.params.len() {
            return Err(Error::new(
                ErrorKind::InvalidArgs,
                format!(
                    "{} takes {} argument(s) ({}), {} given",
                    self.name,
                    self.params.len(),
                    self.signature_params(),
                    args.len()
                ),
            )
            .with_export(&self.name));
        }
        for ((name, ty), val) in self.params.iter().zip(args) {
            check(val, ty).map_err(|why| {
                Error::new(
                    ErrorKind::InvalidArgs,
                    format!("{}: argument `{name}`: {why}", self.name),
                )
                .with_export(&self.name)
            })?;
        }
        Ok(())
    }

    fn signature_params(&self) -> String {
        let p: Vec<String> = self
            .params
            .iter()
            .map(|(n, t)| format!("{n}: {}", type_name(t)))
            .collect();
        p.join(", ")
    }
}

/// Formats a value as WAVE text. Control, separator and bidi characters inside strings and
/// chars are written as WAVE `\u{..}` escapes, so the text is safe to print whatever the
/// guest put in the value.
pub fn to_wave(val: &Val) -> Result<String> {
    val.to_wave()
        .map(|t| crate::sanitize::escape_wave(&t).into_owned())
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgs,
                format!("value cannot be written as WAVE: {e}"),
            )
        })
}

/// A WAVE value of type `ty`, to show the syntax an argument takes.
pub fn wave_example(ty: &Type) -> String {
    match ty {
        Type::Bool => "true".into(),
        Type::S8 | Type::S16 | Type::S32 | Type::S64 => "-42".into(),
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => "42".into(),
        Type::Float32 | Type::Float64 => "1.5".into(),
        Type::Char => "'c'".into(),
        Type::String => "\"text\"".into(),
        Type::List(l) => format!("[{}]", wave_example(&l.ty())),
        Type::Record(r) => {
            let f: Vec<String> = r
                .fields()
                .map(|f| format!("{}: {}", f.name, wave_example(&f.ty)))
                .collect();
            format!("{{{}}}", f.join(", "))
        }
        Type::Tuple(t) => {
            let f: Vec<String> = t.types().map(|t| wave_example(&t)).collect();
            format!("({})", f.join(", "))
        }
        Type::Variant(v) => v.cases().next().map_or("case".into(), |c| match c.ty {
            Some(t) => format!("{}({})", c.name, wave_example(&t)),
            None => c.name.to_string(),
        }),
        Type::Enum(e) => e.names().next().unwrap_or("case").to_string(),
        Type::Option(o) => format!("some({}) or none", wave_example(&o.ty())),
        Type::Result(r) => match r.ok() {
            Some(t) => format!("ok({})", wave_example(&t)),
            None => "ok".into(),
        },
        Type::Flags(f) => format!("{{{}}}", f.names().next().unwrap_or("")),
        other => type_name(other),
    }
}

/// A short WIT-like name of a type, for messages.
pub fn type_name(ty: &Type) -> String {
    type_name_with(ty, &|_| None)
}

/// [`type_name`], with the resources `resource` knows by name: `document` for an
/// `own<document>` and `borrow<document>` for a borrow, as WIT writes them; the others stay
/// `own<resource>` and `borrow<resource>`.
pub fn type_name_with(ty: &Type, resource: &dyn Fn(&ResourceType) -> Option<String>) -> String {
    let name = |t: &Type| type_name_with(t, resource);
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", name(&l.ty())),
        Type::Record(r) => {
            let f: Vec<String> = r
                .fields()
                .map(|f| format!("{}: {}", f.name, name(&f.ty)))
                .collect();
            format!("record {{ {} }}", f.join(", "))
        }
        Type::Tuple(t) => {
            let f: Vec<String> = t.types().map(|t| name(&t)).collect();
            format!("tuple<{}>", f.join(", "))
        }
        Type::Variant(v) => {
            let c: Vec<String> = v
                .cases()
                .map(|c| match c.ty {
                    Some(t) => format!("{}({})", c.name, name(&t)),
                    None => c.name.to_string(),
                })
                .collect();
            format!("variant {{ {} }}", c.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", name(&o.ty())),
        Type::Result(r) => {
            let part = |t: Option<Type>| t.map(|t| name(&t)).unwrap_or_else(|| "_".into());
            format!("result<{}, {}>", part(r.ok()), part(r.err()))
        }
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Own(r) => resource(r).unwrap_or_else(|| "own<resource>".into()),
        Type::Borrow(r) => {
            resource(r).map_or_else(|| "borrow<resource>".into(), |n| format!("borrow<{n}>"))
        }
        Type::Stream(t) => match t.ty() {
            Some(t) => format!("stream<{}>", name(&t)),
            None => "stream".into(),
        },
        Type::Future(t) => match t.ty() {
            Some(t) => format!("future<{}>", name(&t)),
            None => "future".into(),
        },
        Type::ErrorContext => "error-context".into(),
        other => format!("{other:?}"),
    }
}

/// Checks one value against one type; the error says where they differ.
pub fn check(val: &Val, ty: &Type) -> std::result::Result<(), String> {
    let mismatch = || Err(format!("expected {}, got {}", type_name(ty), val_kind(val)));
    match (ty, val) {
        (Type::Bool, Val::Bool(_))
        | (Type::S8, Val::S8(_))
        | (Type::U8, Val::U8(_))
        | (Type::S16, Val::S16(_))
        | (Type::U16, Val::U16(_))
        | (Type::S32, Val::S32(_))
        | (Type::U32, Val::U32(_))
        | (Type::S64, Val::S64(_))
        | (Type::U64, Val::U64(_))
        | (Type::Float32, Val::Float32(_))
        | (Type::Float64, Val::Float64(_))
        | (Type::Char, Val::Char(_))
        | (Type::String, Val::String(_)) => Ok(()),
        (Type::List(l), Val::List(items)) => {
            let elem = l.ty();
            for (i, item) in items.iter().enumerate() {
                check(item, &elem).map_err(|e| format!("[{i}]: {e}"))?;
            }
            Ok(())
        }
        (Type::Record(r), Val::Record(fields)) => {
            if r.fields().len() != fields.len() {
                return Err(format!(
                    "expected {} fields, got {}",
                    r.fields().len(),
                    fields.len()
                ));
            }
            for (f, (name, v)) in r.fields().zip(fields) {
                if f.name != name {
                    return Err(format!("expected field `{}`, got `{name}`", f.name));
                }
                check(v, &f.ty).map_err(|e| format!(".{name}: {e}"))?;
            }
            Ok(())
        }
        (Type::Tuple(t), Val::Tuple(items)) => {
            if t.types().len() != items.len() {
                return Err(format!(
                    "expected {} elements, got {}",
                    t.types().len(),
                    items.len()
                ));
            }
            for (i, (ty, v)) in t.types().zip(items).enumerate() {
                check(v, &ty).map_err(|e| format!(".{i}: {e}"))?;
            }
            Ok(())
        }
        (Type::Variant(v), Val::Variant(case, payload)) => {
            let Some(c) = v.cases().find(|c| c.name == case) else {
                return Err(format!("no case `{case}` in {}", type_name(ty)));
            };
            match (c.ty, payload) {
                (None, None) => Ok(()),
                (Some(t), Some(p)) => check(p, &t).map_err(|e| format!("{case}: {e}")),
                _ => Err(format!("case `{case}`: payload does not match")),
            }
        }
        (Type::Enum(e), Val::Enum(case)) => {
            if e.names().any(|n| n == case) {
                Ok(())
            } else {
                Err(format!("no case `{case}` in {}", type_name(ty)))
            }
        }
        (Type::Option(o), Val::Option(v)) => match v {
            None => Ok(()),
            Some(v) => check(v, &o.ty()).map_err(|e| format!("some: {e}")),
        },
        (Type::Result(r), Val::Result(v)) => match v {
            Ok(p) => check_opt(p.as_deref(), r.ok()).map_err(|e| format!("ok: {e}")),
            Err(p) => check_opt(p.as_deref(), r.err()).map_err(|e| format!("err: {e}")),
        },
        (Type::Flags(f), Val::Flags(set)) => {
            match set.iter().find(|s| !f.names().any(|n| n == s.as_str())) {
                Some(s) => Err(format!("no flag `{s}` in {}", type_name(ty))),
                None => Ok(()),
            }
        }
        (Type::Own(_) | Type::Borrow(_), Val::Resource(_)) => Ok(()),
        _ => mismatch(),
    }
}

fn check_opt(val: Option<&Val>, ty: Option<Type>) -> std::result::Result<(), String> {
    match (val, ty) {
        (None, None) => Ok(()),
        (Some(v), Some(t)) => check(v, &t),
        (None, Some(t)) => Err(format!("expected a {} payload, got none", type_name(&t))),
        (Some(v), None) => Err(format!("expected no payload, got {}", val_kind(v))),
    }
}

/// The kind of a value, for messages (`list`, `record`, ...).
pub fn val_kind(val: &Val) -> &'static str {
    match val {
        Val::Bool(_) => "bool",
        Val::S8(_) => "s8",
        Val::U8(_) => "u8",
        Val::S16(_) => "s16",
        Val::U16(_) => "u16",
        Val::S32(_) => "s32",
        Val::U32(_) => "u32",
        Val::S64(_) => "s64",
        Val::U64(_) => "u64",
        Val::Float32(_) => "f32",
        Val::Float64(_) => "f64",
        Val::Char(_) => "char",
        Val::String(_) => "string",
        Val::List(_) => "list",
        Val::FixedLengthList(_) => "fixed-length list",
        Val::Map(_) => "map",
        Val::Record(_) => "record",
        Val::Tuple(_) => "tuple",
        Val::Variant(..) => "variant",
        Val::Enum(_) => "enum",
        Val::Option(_) => "option",
        Val::Result(_) => "result",
        Val::Flags(_) => "flags",
        Val::Resource(_) => "resource",
        Val::Future(_) => "future",
        Val::Stream(_) => "stream",
        Val::ErrorContext(_) => "error-context",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wave_stays_valid() {
        let v = wasmtime::component::Val::String("a\u{1b}b\u{202e}".into());
        let text = v.to_wave().unwrap();
        let escaped = crate::sanitize::escape_wave(&text);
        assert!(!escaped.chars().any(crate::sanitize::is_dangerous));
        let back = wasmtime::component::Val::from_wave(
            &wasmtime::component::types::Type::String,
            &escaped,
        )
        .unwrap();
        assert_eq!(back, v);
    }
}
