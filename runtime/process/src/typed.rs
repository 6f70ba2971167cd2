//! Calls in the worker without `Val`s, for the signatures most interfaces use.
//!
//! A dynamic call builds a `Val` per value on the way in and out, which for a list of bytes
//! is a `Val` per byte: most of what a 1 KiB call costs. When an export's signature is one
//! of the common shapes of the core's table (`link/shapes.rs`: integers, floats, bools,
//! strings and byte lists), the worker reads the
//! arguments from the wire straight into Rust values, calls the export through a typed
//! handle, and writes the results back to the wire: the same bytes as `wire/value.rs`
//! writes, so the host cannot tell the difference.

use wasmtime::component::types::Type;
use wasmtime::component::{ComponentNamedList, Lift, Lower, Val};

use crate::error::Result;
use crate::instance::{Budget, LiveInstance, Recipe};
use crate::value::Function;
use crate::wire::message::malformed;
use crate::wire::value::{self, NoHandles};
use membrane_core::link::shapes;

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

/// The scalars the table has beyond unsigned integers go through the value codec of
/// `wire/value.rs` itself (they hold no allocation, so a `Val` costs nothing here): the
/// same bytes either way, by construction.
macro_rules! wire_by_codec {
    ($($t:ty => $ty:ident, $val:ident);* $(;)?) => {$(
        impl Wire for $t {
            fn read(input: &mut &[u8]) -> Result<Self> {
                match value::decode(input, &Type::$ty, &mut NoHandles, SCALAR)? {
                    Val::$val(v) => Ok(v),
                    _ => Err(malformed("a value of another type")),
                }
            }
            fn write(&self, out: &mut Vec<u8>) {
                // A scalar of its own type always encodes.
                let _ = value::encode(&Val::$val(*self), &Type::$ty, out, &mut NoHandles);
            }
        }
    )*};
}

/// The decode budget of one scalar (its `Val`).
const SCALAR: usize = std::mem::size_of::<Val>();

wire_by_codec! {
    bool => Bool, Bool;
    i32 => S32, S32;
    i64 => S64, S64;
    f64 => Float64, Float64;
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

/// The signature as `p1,p2->r`, when every part is a primitive of the shapes' table.
pub(super) fn key(func: &Function) -> Option<String> {
    let params: Vec<Type> = func.params.iter().map(|(_, t)| t.clone()).collect();
    shapes::key(&params, &func.results)
}

/// Calls `func` with wire-encoded `args` through a typed handle when its signature (`key`)
/// is one of the shapes of the core's table (`link/shapes.rs`); writes the wire-encoded results to `out`. `None` when the
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
    membrane_core::for_each_shape!(shapes)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value as its `Wire` writes it, as the value codec writes it.
    fn both<T: Wire>(v: &T, val: Val, ty: Type) -> (Vec<u8>, Vec<u8>) {
        let mut typed = Vec::new();
        v.write(&mut typed);
        let mut codec = Vec::new();
        value::encode(&val, &ty, &mut codec, &mut NoHandles).unwrap();
        (typed, codec)
    }

    /// The typed path writes what the dynamic path writes, and reads it back: the host
    /// cannot tell which path the worker took.
    #[test]
    fn typed_values_are_the_codecs_bytes() {
        for n in [0u32, 1, 127, 128, u32::MAX] {
            let (a, b) = both(&n, Val::U32(n), Type::U32);
            assert_eq!(a, b, "{n}");
            assert_eq!(u32::read(&mut a.as_slice()).unwrap(), n);
        }
        for n in [0u64, 300, u64::MAX] {
            let (a, b) = both(&n, Val::U64(n), Type::U64);
            assert_eq!(a, b, "{n}");
            assert_eq!(u64::read(&mut a.as_slice()).unwrap(), n);
        }
        for n in [0i32, -1, 64, -65, i32::MIN, i32::MAX] {
            let (a, _) = both(&n, Val::S32(n), Type::S32);
            assert_eq!(i32::read(&mut a.as_slice()).unwrap(), n);
        }
        for n in [0i64, -1, i64::MIN, i64::MAX] {
            let (a, _) = both(&n, Val::S64(n), Type::S64);
            assert_eq!(i64::read(&mut a.as_slice()).unwrap(), n);
        }
        for b in [false, true] {
            let (a, _) = both(&b, Val::Bool(b), Type::Bool);
            assert_eq!(bool::read(&mut a.as_slice()).unwrap(), b);
        }
        let x = -1.5f64;
        let (a, _) = both(&x, Val::Float64(x), Type::Float64);
        assert_eq!(f64::read(&mut a.as_slice()).unwrap(), x);
        let text = "héllo".to_string();
        let (a, b) = both(&text, Val::String(text.clone()), Type::String);
        assert_eq!(a, b);
        assert_eq!(String::read(&mut a.as_slice()).unwrap(), text);
    }

    /// A bool that is neither 0 nor 1 and a cut integer are refused, as the codec refuses them.
    #[test]
    fn malformed_scalars_are_refused() {
        assert!(bool::read(&mut [2u8].as_slice()).is_err());
        assert!(i64::read(&mut [0x80u8].as_slice()).is_err());
        assert!(u32::read(&mut [0xffu8, 0xff, 0xff, 0xff, 0x7f].as_slice()).is_err());
    }
}
