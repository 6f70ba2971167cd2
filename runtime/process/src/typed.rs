//! Calls in the worker without `Val`s, for the signatures most interfaces use.
//!
//! A dynamic call builds a `Val` per value on the way in and out, which for a list of bytes
//! is a `Val` per byte: most of what a 1 KiB call costs. When an export's signature is one
//! of a few common shapes (integers, strings and byte lists), the worker reads the
//! arguments from the wire straight into Rust values, calls the export through a typed
//! handle, and writes the results back to the wire: the same bytes as `wire/value.rs`
//! writes, so the host cannot tell the difference.

use wasmtime::component::types::Type;
use wasmtime::component::{ComponentNamedList, Lift, Lower};

use crate::error::Result;
use crate::instance::{Budget, LiveInstance, Recipe};
use crate::value::Function;
use crate::wire::message::malformed;

/// A value read from and written to the wire in the component model's value encoding.
trait Wire: Sized {
    fn read(input: &mut &[u8]) -> Result<Self>;
    fn write(&self, out: &mut Vec<u8>);
}

fn leb(input: &mut &[u8], bits: u32) -> Result<u64> {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let (&byte, rest) = input
            .split_first()
            .ok_or_else(|| malformed("an integer is cut short"))?;
        *input = rest;
        if shift >= bits {
            return Err(malformed("an integer is too long"));
        }
        value |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            if bits < 64 && value >> bits != 0 {
                return Err(malformed("an integer is out of range"));
            }
            return Ok(value);
        }
    }
}

fn put_leb(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

impl Wire for u32 {
    fn read(input: &mut &[u8]) -> Result<Self> {
        Ok(leb(input, 32)? as u32)
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_leb(u64::from(*self), out);
    }
}

impl Wire for u64 {
    fn read(input: &mut &[u8]) -> Result<Self> {
        leb(input, 64)
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_leb(*self, out);
    }
}

fn bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8]> {
    let len = leb(input, 32)? as usize;
    if len > input.len() {
        return Err(malformed("a length runs past the message"));
    }
    let (b, rest) = input.split_at(len);
    *input = rest;
    Ok(b)
}

impl Wire for Vec<u8> {
    fn read(input: &mut &[u8]) -> Result<Self> {
        Ok(bytes(input)?.to_vec())
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_leb(self.len() as u64, out);
        out.extend_from_slice(self);
    }
}

impl Wire for String {
    fn read(input: &mut &[u8]) -> Result<Self> {
        let b = bytes(input)?;
        String::from_utf8(b.to_vec()).map_err(|_| malformed("a string is not UTF-8"))
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_leb(self.len() as u64, out);
        out.extend_from_slice(self.as_bytes());
    }
}

/// A tuple of wire values: a function's parameters or results.
trait WireList: Sized {
    fn read_all(input: &[u8]) -> Result<Self>;
    fn write_all(&self, out: &mut Vec<u8>);
}

macro_rules! wire_list {
    ($($t:ident),*) => {
        impl<$($t: Wire),*> WireList for ($($t,)*) {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn read_all(input: &[u8]) -> Result<Self> {
                let mut input = input;
                $(let $t = $t::read(&mut input)?;)*
                if !input.is_empty() {
                    return Err(malformed("trailing bytes after the arguments"));
                }
                Ok(($($t,)*))
            }
            #[allow(non_snake_case, unused_variables)]
            fn write_all(&self, out: &mut Vec<u8>) {
                let ($($t,)*) = self;
                $($t.write(out);)*
            }
        }
    };
}

wire_list!();
wire_list!(A);
wire_list!(A, B);

/// One primitive of a common signature.
fn short(ty: &Type) -> Option<&'static str> {
    Some(match ty {
        Type::U32 => "u32",
        Type::U64 => "u64",
        Type::String => "string",
        Type::List(l) if l.ty() == Type::U8 => "bytes",
        _ => return None,
    })
}

/// The signature as `p1,p2->r`, when every part is a primitive of the list.
pub(super) fn key(func: &Function) -> Option<String> {
    let p: Option<Vec<&str>> = func.params.iter().map(|(_, t)| short(t)).collect();
    let r: Option<Vec<&str>> = func.results.iter().map(short).collect();
    Some(format!("{}->{}", p?.join(","), r?.join(",")))
}

/// Calls `func` with wire-encoded `args` through a typed handle when its signature (`key`)
/// is one of the shapes below; writes the wire-encoded results to `out`. `None` when the
/// shape is not one of them (the caller goes the dynamic way).
pub(super) fn call(
    key: &str,
    instance: &mut LiveInstance,
    recipe: &Recipe,
    func: &Function,
    args: &[u8],
    budget: Budget,
    out: &mut Vec<u8>,
) -> Option<Result<()>> {
    macro_rules! shapes {
        ($($k:literal => ($($p:ty),*) -> ($($r:ty),*)),* $(,)?) => {
            match key {
                $($k => Some(typed::<($($p,)*), ($($r,)*)>(instance, recipe, func, args, budget, out)),)*
                _ => None,
            }
        };
    }
    shapes! {
        "u32,u32->u32" => (u32, u32) -> (u32),
        "u64->u64" => (u64) -> (u64),
        "u64,u64->u64" => (u64, u64) -> (u64),
        "u32->u32" => (u32) -> (u32),
        "->u64" => () -> (u64),
        "string->string" => (String) -> (String),
        "string->u64" => (String) -> (u64),
        "bytes->bytes" => (Vec<u8>) -> (Vec<u8>),
        "string->bytes" => (String) -> (Vec<u8>),
        "bytes->u64" => (Vec<u8>) -> (u64),
    }
}

fn typed<P, R>(
    instance: &mut LiveInstance,
    recipe: &Recipe,
    func: &Function,
    args: &[u8],
    budget: Budget,
    out: &mut Vec<u8>,
) -> Result<()>
where
    P: ComponentNamedList + Lower + WireList,
    R: ComponentNamedList + Lift + WireList,
{
    let params = P::read_all(args)?;
    // The types were derived from the export's own WIT types; wasmtime checks them once
    // per instance here (`call_typed` then skips the check).
    if let Err(e) = instance.check_typed::<P, R>(recipe, func)? {
        return Err(crate::error::Error::new(
            crate::error::ErrorKind::HostPanic,
            format!("the worker's typed call of {} does not fit: {e}", func.name),
        ));
    }
    let results: R = instance.call_typed(recipe, func, params, budget)?;
    results.write_all(out);
    Ok(())
}
