//! Structural comparison of an importer's view of a function with the provider's.
//!
//! wasmtime compares resource types by identity, and types of two different components can
//! never be compared directly, so this walks both types side by side. Resources match by
//! their name in the linked interface ("their place in the interface").

use wasmtime::component::ResourceType;
use wasmtime::component::types::Type;

use crate::value::type_name;

/// The resources of one side of a link, by name.
#[derive(Default)]
pub struct Resources(pub Vec<(String, ResourceType)>);

impl Resources {
    pub fn name_of(&self, ty: &ResourceType) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, t)| t == ty)
            .map(|(n, _)| n.as_str())
    }
}

/// The two sides' resource names, used while comparing.
pub struct Sides<'a> {
    pub importer: &'a Resources,
    pub provider: &'a Resources,
}

/// Compares two types; on mismatch, returns the path inside the type where they first
/// differ and the two types at that path.
pub fn compare(want: &Type, got: &Type, sides: &Sides<'_>) -> Result<(), Difference> {
    let differ = || {
        Err(Difference {
            path: String::new(),
            want: describe(want, sides.importer),
            got: describe(got, sides.provider),
        })
    };
    let inside = |r: Result<(), Difference>, step: String| {
        r.map_err(|mut d| {
            d.path = if d.path.is_empty() {
                step.clone()
            } else {
                format!("{step}.{}", d.path)
            };
            d
        })
    };
    match (want, got) {
        (Type::Bool, Type::Bool)
        | (Type::S8, Type::S8)
        | (Type::U8, Type::U8)
        | (Type::S16, Type::S16)
        | (Type::U16, Type::U16)
        | (Type::S32, Type::S32)
        | (Type::U32, Type::U32)
        | (Type::S64, Type::S64)
        | (Type::U64, Type::U64)
        | (Type::Float32, Type::Float32)
        | (Type::Float64, Type::Float64)
        | (Type::Char, Type::Char)
        | (Type::String, Type::String) => Ok(()),
        (Type::List(a), Type::List(b)) => {
            inside(compare(&a.ty(), &b.ty(), sides), "element".into())
        }
        (Type::Option(a), Type::Option(b)) => {
            inside(compare(&a.ty(), &b.ty(), sides), "some".into())
        }
        (Type::Result(a), Type::Result(b)) => {
            inside(compare_opt(a.ok(), b.ok(), sides), "ok".into())?;
            inside(compare_opt(a.err(), b.err(), sides), "err".into())
        }
        (Type::Tuple(a), Type::Tuple(b)) => {
            if a.types().len() != b.types().len() {
                return differ();
            }
            for (i, (x, y)) in a.types().zip(b.types()).enumerate() {
                inside(compare(&x, &y, sides), i.to_string())?;
            }
            Ok(())
        }
        (Type::Record(a), Type::Record(b)) => {
            if a.fields().len() != b.fields().len()
                || a.fields().zip(b.fields()).any(|(x, y)| x.name != y.name)
            {
                return differ();
            }
            for (x, y) in a.fields().zip(b.fields()) {
                inside(compare(&x.ty, &y.ty, sides), x.name.to_string())?;
            }
            Ok(())
        }
        (Type::Variant(a), Type::Variant(b)) => {
            if a.cases().len() != b.cases().len()
                || a.cases().zip(b.cases()).any(|(x, y)| x.name != y.name)
            {
                return differ();
            }
            for (x, y) in a.cases().zip(b.cases()) {
                inside(compare_opt(x.ty, y.ty, sides), x.name.to_string())?;
            }
            Ok(())
        }
        (Type::Stream(a), Type::Stream(b)) => compare_opt(a.ty(), b.ty(), sides),
        (Type::Future(a), Type::Future(b)) => compare_opt(a.ty(), b.ty(), sides),
        (Type::ErrorContext, Type::ErrorContext) => Ok(()),
        (Type::Enum(a), Type::Enum(b)) if a.names().eq(b.names()) => Ok(()),
        (Type::Flags(a), Type::Flags(b)) if a.names().eq(b.names()) => Ok(()),
        (Type::Own(a), Type::Own(b)) | (Type::Borrow(a), Type::Borrow(b)) => {
            match (sides.importer.name_of(a), sides.provider.name_of(b)) {
                (Some(x), Some(y)) if x == y => Ok(()),
                _ => differ(),
            }
        }
        _ => differ(),
    }
}

fn compare_opt(want: Option<Type>, got: Option<Type>, sides: &Sides<'_>) -> Result<(), Difference> {
    match (want, got) {
        (None, None) => Ok(()),
        (Some(a), Some(b)) => compare(&a, &b, sides),
        (a, b) => Err(Difference {
            path: String::new(),
            want: a
                .map(|t| describe(&t, sides.importer))
                .unwrap_or_else(|| "no payload".into()),
            got: b
                .map(|t| describe(&t, sides.provider))
                .unwrap_or_else(|| "no payload".into()),
        }),
    }
}

/// Where and how two types differ.
#[derive(Debug)]
pub struct Difference {
    /// Steps from the compared type down to the difference, e.g. `some.label`; empty at the top.
    pub path: String,
    pub want: String,
    pub got: String,
}

/// A type's name, with resources named by their place in the interface.
pub fn describe(ty: &Type, resources: &Resources) -> String {
    match ty {
        Type::Own(r) => format!(
            "own<{}>",
            resources.name_of(r).unwrap_or("foreign resource")
        ),
        Type::Borrow(r) => format!(
            "borrow<{}>",
            resources.name_of(r).unwrap_or("foreign resource")
        ),
        other if has_resources(other) => match other {
            Type::List(l) => format!("list<{}>", describe(&l.ty(), resources)),
            Type::Option(o) => format!("option<{}>", describe(&o.ty(), resources)),
            _ => type_name(other),
        },
        other => type_name(other),
    }
}

/// Whether a type holds a resource handle anywhere inside it.
pub fn has_resources(ty: &Type) -> bool {
    match ty {
        Type::Own(_) | Type::Borrow(_) => true,
        Type::List(l) => has_resources(&l.ty()),
        Type::Option(o) => has_resources(&o.ty()),
        Type::Result(r) => {
            r.ok().is_some_and(|t| has_resources(&t)) || r.err().is_some_and(|t| has_resources(&t))
        }
        Type::Tuple(t) => t.types().any(|t| has_resources(&t)),
        Type::Record(r) => r.fields().any(|f| has_resources(&f.ty)),
        Type::Variant(v) => v.cases().any(|c| c.ty.is_some_and(|t| has_resources(&t))),
        _ => false,
    }
}

/// Whether a type holds a stream, a future or an error-context anywhere inside it: values
/// that live in one instance's Store and cannot be copied to another's as they are.
pub fn has_async_values(ty: &Type) -> bool {
    match ty {
        Type::Stream(_) | Type::Future(_) | Type::ErrorContext => true,
        Type::List(l) => has_async_values(&l.ty()),
        Type::Option(o) => has_async_values(&o.ty()),
        Type::Result(r) => {
            r.ok().is_some_and(|t| has_async_values(&t))
                || r.err().is_some_and(|t| has_async_values(&t))
        }
        Type::Tuple(t) => t.types().any(|t| has_async_values(&t)),
        Type::Record(r) => r.fields().any(|f| has_async_values(&f.ty)),
        Type::Variant(v) => v
            .cases()
            .any(|c| c.ty.is_some_and(|t| has_async_values(&t))),
        _ => false,
    }
}
