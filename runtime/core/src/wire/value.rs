//! Component values in the component model's value definition encoding.
//!
//! The encoding is the one the component model's binary format uses for value definitions
//! and wRPC uses on the wire: a value is written according to its type, with no tags or
//! lengths beyond what the type needs. `bool`, `s8` and `u8` are one byte; wider integers
//! are LEB128 (signed for `s16`..`s64`); floats are little-endian; a `char` is its UTF-8
//! bytes; strings and lists start with a `u32` LEB128 length; records and tuples are their
//! fields in order; variants and enums start with a `u32` LEB128 case index; options and
//! results start with a tag byte (0 for `none` and `ok`); flags are a little-endian bit
//! vector of `ceil(n / 8)` bytes. Resources are `u32` LEB128 handles that the caller maps
//! through [`Handles`]. Two newer types are Membrane's choice: a `map<k, v>` is written as a
//! `list<tuple<k, v>>`, a fixed-length list as its elements without a length.
//!
//! The decoder reads bytes from another process that may be hostile: it never panics,
//! allocates only what the remaining input can justify, and recurses only as deep as the
//! type, which comes from the component and not from the bytes. Malformed bytes are an
//! [`ErrorKind::Crashed`] error that names the byte offset; a value that does not fit its
//! type on the way out, and a type that cannot cross a process boundary (futures, streams,
//! error contexts), is [`ErrorKind::InvalidArgs`]. LEB128 integers may be padded up to the
//! width of their type, as in core wasm, but not beyond it.

use std::fmt;

use wasmtime::component::types::Type;
use wasmtime::component::{ResourceAny, Val};

use crate::error::{Error, ErrorKind, Result};
use crate::value::type_name;
use crate::value::val_kind;

/// How many elements of types that encode to no bytes one decode may produce in all: each
/// still costs a `Val`, and the input cannot justify them. Validation refuses such types
/// today (empty records, tuples, flags, fixed-length lists); the decoder does not rely on it.
const MAX_EMPTY_ELEMENTS: usize = 1 << 20;

/// Maps resources to the `u32` handles that cross the boundary, and back.
pub trait Handles {
    /// The handle that stands for `r`, a value of type `ty` (`own` or `borrow`).
    fn lower(&mut self, r: &ResourceAny, ty: &Type) -> Result<u32>;

    /// The resource that `handle`, received as a value of type `ty`, stands for. The handle
    /// comes from the other side: an unknown one must be an error.
    fn lift(&mut self, handle: u32, ty: &Type) -> Result<ResourceAny>;
}

/// [`Handles`] for calls that pass no resources: refuses any.
pub struct NoHandles;

impl Handles for NoHandles {
    fn lower(&mut self, _: &ResourceAny, ty: &Type) -> Result<u32> {
        Err(no_handles(ty))
    }

    fn lift(&mut self, _: u32, ty: &Type) -> Result<ResourceAny> {
        Err(no_handles(ty))
    }
}

fn no_handles(ty: &Type) -> Error {
    Error::new(
        ErrorKind::InvalidArgs,
        format!(
            "a {} cannot cross this process boundary: the call maps no resource handles",
            type_name(ty)
        ),
    )
}

/// The name of the first type inside `ty` whose values cannot cross a process boundary
/// (`future`, `stream`, `error-context`), if there is one: check a function's types with
/// it once, before its first call, rather than fail each call.
#[allow(
    dead_code,
    reason = "API for the worker protocol; not every part is called yet"
)]
pub fn unsupported(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Future(_) => Some("future"),
        Type::Stream(_) => Some("stream"),
        Type::ErrorContext => Some("error-context"),
        Type::List(l) => unsupported(&l.ty()),
        Type::FixedLengthList(l) => unsupported(&l.ty()),
        Type::Map(m) => unsupported(&m.key()).or_else(|| unsupported(&m.value())),
        Type::Option(o) => unsupported(&o.ty()),
        Type::Result(r) => r
            .ok()
            .and_then(|t| unsupported(&t))
            .or_else(|| r.err().and_then(|t| unsupported(&t))),
        Type::Record(r) => r.fields().find_map(|f| unsupported(&f.ty)),
        Type::Tuple(t) => t.types().find_map(|t| unsupported(&t)),
        Type::Variant(v) => v.cases().find_map(|c| c.ty.and_then(|t| unsupported(&t))),
        _ => None,
    }
}

fn unsupported_error(ty: &Type) -> Error {
    Error::new(
        ErrorKind::InvalidArgs,
        format!(
            "a {} cannot cross a process boundary: component-model-async values are not supported",
            type_name(ty)
        ),
    )
}

/// Appends the encoding of `v`, a value of type `ty`, to `out`. On error `out` is as it was.
pub fn encode(v: &Val, ty: &Type, out: &mut Vec<u8>, h: &mut dyn Handles) -> Result<()> {
    let start = out.len();
    let r = write(v, ty, out, h);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// Appends the encodings of `vals`, one per type of `tys`, to `out`: a call's arguments or
/// results. On error `out` is as it was.
#[allow(
    dead_code,
    reason = "API for the worker protocol; not every part is called yet"
)]
pub fn encode_all(
    vals: &[Val],
    tys: &[Type],
    out: &mut Vec<u8>,
    h: &mut dyn Handles,
) -> Result<()> {
    if vals.len() != tys.len() {
        return Err(Error::new(
            ErrorKind::InvalidArgs,
            format!("{} values for {} types", vals.len(), tys.len()),
        ));
    }
    let start = out.len();
    for (i, (v, ty)) in vals.iter().zip(tys).enumerate() {
        if let Err(e) = write(v, ty, out, h) {
            out.truncate(start);
            return Err(e.context(format_args!("value {i}")));
        }
    }
    Ok(())
}

/// Decodes one value of type `ty` from the front of `input` and moves `input` past it.
/// Byte offsets in errors count from the front of `input`; on error `input` is unchanged.
#[allow(
    dead_code,
    reason = "API for the worker protocol; not every part is called yet"
)]
pub fn decode(input: &mut &[u8], ty: &Type, h: &mut dyn Handles, budget: usize) -> Result<Val> {
    let mut r = Reader::new(input, budget);
    let v = read(&mut r, ty, h)?;
    *input = &input[r.pos..];
    Ok(v)
}

/// Decodes one value per type of `tys` from `input`, which must hold nothing else.
pub fn decode_all(
    input: &[u8],
    tys: &[Type],
    h: &mut dyn Handles,
    budget: usize,
) -> Result<Vec<Val>> {
    let mut r = Reader::new(input, budget);
    let mut vals = Vec::with_capacity(tys.len());
    for (i, ty) in tys.iter().enumerate() {
        vals.push(read(&mut r, ty, h).map_err(|e| e.context(format_args!("value {i}")))?);
    }
    r.finish()?;
    Ok(vals)
}

/// [`decode_all`] into `out`, one slot per type (a call's results). On error some slots
/// may have been written.
pub fn decode_into(
    input: &[u8],
    tys: &[Type],
    out: &mut [Val],
    h: &mut dyn Handles,
    budget: usize,
) -> Result<()> {
    if out.len() != tys.len() {
        return Err(Error::new(
            ErrorKind::InvalidArgs,
            format!("{} slots for {} values", out.len(), tys.len()),
        ));
    }
    let mut r = Reader::new(input, budget);
    for (i, (ty, slot)) in tys.iter().zip(out.iter_mut()).enumerate() {
        *slot = read(&mut r, ty, h).map_err(|e| e.context(format_args!("value {i}")))?;
    }
    r.finish()
}

fn write(v: &Val, ty: &Type, out: &mut Vec<u8>, h: &mut dyn Handles) -> Result<()> {
    match (ty, v) {
        (Type::Bool, Val::Bool(b)) => out.push(u8::from(*b)),
        (Type::S8, Val::S8(n)) => out.push(*n as u8),
        (Type::U8, Val::U8(n)) => out.push(*n),
        (Type::S16, Val::S16(n)) => write_sleb(out, i64::from(*n)),
        (Type::U16, Val::U16(n)) => write_uleb(out, u64::from(*n)),
        (Type::S32, Val::S32(n)) => write_sleb(out, i64::from(*n)),
        (Type::U32, Val::U32(n)) => write_uleb(out, u64::from(*n)),
        (Type::S64, Val::S64(n)) => write_sleb(out, *n),
        (Type::U64, Val::U64(n)) => write_uleb(out, *n),
        (Type::Float32, Val::Float32(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Type::Float64, Val::Float64(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Type::Char, Val::Char(c)) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        (Type::String, Val::String(s)) => {
            write_len(out, s.len())?;
            out.extend_from_slice(s.as_bytes());
        }
        (Type::List(l), Val::List(items)) => {
            write_len(out, items.len())?;
            match l.ty() {
                Type::U8 => write_bytes(items, out)?,
                elem => write_seq(items, &elem, out, h)?,
            }
        }
        (Type::FixedLengthList(l), Val::FixedLengthList(items)) => {
            if items.len() != l.len() as usize {
                return Err(invalid(format_args!(
                    "expected {} elements, got {}",
                    l.len(),
                    items.len()
                )));
            }
            write_seq(items, &l.ty(), out, h)?;
        }
        (Type::Map(m), Val::Map(pairs)) => {
            write_len(out, pairs.len())?;
            let (kt, vt) = (m.key(), m.value());
            for (i, (k, v)) in pairs.iter().enumerate() {
                write(k, &kt, out, h).map_err(|e| e.context(format_args!("[{i}] key")))?;
                write(v, &vt, out, h).map_err(|e| e.context(format_args!("[{i}] value")))?;
            }
        }
        (Type::Record(r), Val::Record(fields)) => {
            if r.fields().len() != fields.len() {
                return Err(invalid(format_args!(
                    "expected {} fields, got {}",
                    r.fields().len(),
                    fields.len()
                )));
            }
            for (f, (name, v)) in r.fields().zip(fields) {
                if f.name != name {
                    return Err(invalid(format_args!(
                        "expected field `{}`, got `{name}`",
                        f.name
                    )));
                }
                write(v, &f.ty, out, h).map_err(|e| e.context(format_args!(".{name}")))?;
            }
        }
        (Type::Tuple(t), Val::Tuple(items)) => {
            if t.types().len() != items.len() {
                return Err(invalid(format_args!(
                    "expected {} elements, got {}",
                    t.types().len(),
                    items.len()
                )));
            }
            for (i, (ty, v)) in t.types().zip(items).enumerate() {
                write(v, &ty, out, h).map_err(|e| e.context(format_args!(".{i}")))?;
            }
        }
        (Type::Variant(var), Val::Variant(case, payload)) => {
            let Some((i, c)) = var.cases().enumerate().find(|(_, c)| c.name == case) else {
                return Err(invalid(format_args!(
                    "no case `{case}` in {}",
                    type_name(ty)
                )));
            };
            write_uleb(out, i as u64);
            write_payload(payload.as_deref(), c.ty.as_ref(), out, h)
                .map_err(|e| e.context(format_args!("case `{case}`")))?;
        }
        (Type::Enum(e), Val::Enum(case)) => {
            let Some(i) = e.names().position(|n| n == case) else {
                return Err(invalid(format_args!(
                    "no case `{case}` in {}",
                    type_name(ty)
                )));
            };
            write_uleb(out, i as u64);
        }
        (Type::Option(_), Val::Option(None)) => out.push(0),
        (Type::Option(o), Val::Option(Some(v))) => {
            out.push(1);
            write(v, &o.ty(), out, h).map_err(|e| e.context("some"))?;
        }
        (Type::Result(r), Val::Result(res)) => {
            let (tag, payload, payload_ty, side) = match res {
                Ok(p) => (0, p, r.ok(), "ok"),
                Err(p) => (1, p, r.err(), "err"),
            };
            out.push(tag);
            write_payload(payload.as_deref(), payload_ty.as_ref(), out, h)
                .map_err(|e| e.context(side))?;
        }
        (Type::Flags(f), Val::Flags(set)) => {
            let start = out.len();
            out.resize(start + f.names().len().div_ceil(8), 0);
            for name in set {
                let Some(i) = f.names().position(|n| n == name) else {
                    return Err(invalid(format_args!(
                        "no flag `{name}` in {}",
                        type_name(ty)
                    )));
                };
                out[start + i / 8] |= 1 << (i % 8);
            }
        }
        (Type::Own(_), Val::Resource(r)) if !r.owned() => {
            return Err(invalid("a borrowed resource cannot be passed as an `own`"));
        }
        (Type::Own(_) | Type::Borrow(_), Val::Resource(r)) => {
            let handle = h.lower(r, ty)?;
            write_uleb(out, u64::from(handle));
        }
        (Type::Future(_) | Type::Stream(_) | Type::ErrorContext, _) => {
            return Err(unsupported_error(ty));
        }
        _ => {
            return Err(invalid(format_args!(
                "expected {}, got {}",
                type_name(ty),
                val_kind(v)
            )));
        }
    }
    Ok(())
}

/// The payload of a variant case or a result: present exactly when the type has one.
fn write_payload(
    v: Option<&Val>,
    ty: Option<&Type>,
    out: &mut Vec<u8>,
    h: &mut dyn Handles,
) -> Result<()> {
    match (v, ty) {
        (None, None) => Ok(()),
        (Some(v), Some(ty)) => write(v, ty, out, h),
        (None, Some(ty)) => Err(invalid(format_args!(
            "expected a {} payload, got none",
            type_name(ty)
        ))),
        (Some(v), None) => Err(invalid(format_args!(
            "expected no payload, got {}",
            val_kind(v)
        ))),
    }
}

fn write_seq(items: &[Val], elem: &Type, out: &mut Vec<u8>, h: &mut dyn Handles) -> Result<()> {
    for (i, v) in items.iter().enumerate() {
        write(v, elem, out, h).map_err(|e| e.context(format_args!("[{i}]")))?;
    }
    Ok(())
}

/// A `list<u8>`: one byte per element, without the dispatch.
fn write_bytes(items: &[Val], out: &mut Vec<u8>) -> Result<()> {
    out.reserve(items.len());
    for (i, v) in items.iter().enumerate() {
        match v {
            Val::U8(b) => out.push(*b),
            other => {
                return Err(invalid(format_args!(
                    "[{i}]: expected u8, got {}",
                    val_kind(other)
                )));
            }
        }
    }
    Ok(())
}

fn write_len(out: &mut Vec<u8>, len: usize) -> Result<()> {
    let len = u32::try_from(len)
        .map_err(|_| invalid(format_args!("a length of {len} does not fit in a u32")))?;
    write_uleb(out, u64::from(len));
    Ok(())
}

#[inline]
fn write_uleb(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

#[inline]
fn write_sleb(out: &mut Vec<u8>, mut n: i64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if (n == 0 && b & 0x40 == 0) || (n == -1 && b & 0x40 != 0) {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn read(r: &mut Reader<'_>, ty: &Type, h: &mut dyn Handles) -> Result<Val> {
    Ok(match ty {
        Type::Bool => Val::Bool(r.tag("bool")?),
        Type::S8 => Val::S8(r.byte("s8")? as i8),
        Type::U8 => Val::U8(r.byte("u8")?),
        Type::S16 => Val::S16(r.sleb(16, "s16")? as i16),
        Type::U16 => Val::U16(r.uleb(16, "u16")? as u16),
        Type::S32 => Val::S32(r.sleb(32, "s32")? as i32),
        Type::U32 => Val::U32(r.uleb(32, "u32")? as u32),
        Type::S64 => Val::S64(r.sleb(64, "s64")?),
        Type::U64 => Val::U64(r.uleb(64, "u64")?),
        Type::Float32 => Val::Float32(f32::from_le_bytes(r.array("f32")?)),
        Type::Float64 => Val::Float64(f64::from_le_bytes(r.array("f64")?)),
        Type::Char => Val::Char(r.char()?),
        Type::String => Val::String(r.string()?),
        Type::List(l) => {
            let at = r.pos;
            let n = r.uleb(32, "list length")? as usize;
            match l.ty() {
                Type::U8 => {
                    let bytes = r.take(n, "list<u8>")?;
                    r.charge_vals(n)?;
                    Val::List(bytes.iter().map(|&b| Val::U8(b)).collect())
                }
                elem => {
                    r.reserve(n, encodes_empty(&elem), at, "list")?;
                    r.charge_vals(n)?;
                    Val::List(read_seq(r, n, &elem, h)?)
                }
            }
        }
        Type::FixedLengthList(l) => {
            let elem = l.ty();
            let n = l.len() as usize;
            r.reserve(n, encodes_empty(&elem), r.pos, "fixed-length list")?;
            r.charge_vals(n)?;
            Val::FixedLengthList(read_seq(r, n, &elem, h)?)
        }
        Type::Map(m) => {
            let at = r.pos;
            let n = r.uleb(32, "map length")? as usize;
            let (kt, vt) = (m.key(), m.value());
            r.reserve(n, encodes_empty(&kt) && encodes_empty(&vt), at, "map")?;
            r.charge_vals(n.saturating_mul(2))?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let k = read(r, &kt, h)?;
                pairs.push((k, read(r, &vt, h)?));
            }
            Val::Map(pairs)
        }
        Type::Record(rt) => {
            r.charge_vals(rt.fields().len())?;
            let mut fields = Vec::with_capacity(rt.fields().len());
            for f in rt.fields() {
                r.charge(f.name.len())?;
                let v = read(r, &f.ty, h)?;
                fields.push((f.name.to_string(), v));
            }
            Val::Record(fields)
        }
        Type::Tuple(t) => {
            r.charge_vals(t.types().len())?;
            let mut items = Vec::with_capacity(t.types().len());
            for ty in t.types() {
                items.push(read(r, &ty, h)?);
            }
            Val::Tuple(items)
        }
        Type::Variant(var) => {
            let at = r.pos;
            let i = r.uleb(32, "variant case index")? as usize;
            let Some(c) = var.cases().nth(i) else {
                return Err(malformed(format_args!(
                    "variant case index {i} at byte {at} is out of range ({} cases)",
                    var.cases().len()
                )));
            };
            r.charge(c.name.len())?;
            let payload = match &c.ty {
                Some(t) => {
                    r.charge_vals(1)?;
                    Some(Box::new(read(r, t, h)?))
                }
                None => None,
            };
            Val::Variant(c.name.to_string(), payload)
        }
        Type::Enum(e) => {
            let at = r.pos;
            let i = r.uleb(32, "enum case index")? as usize;
            let Some(name) = e.names().nth(i) else {
                return Err(malformed(format_args!(
                    "enum case index {i} at byte {at} is out of range ({} cases)",
                    e.names().len()
                )));
            };
            r.charge(name.len())?;
            Val::Enum(name.to_string())
        }
        Type::Option(o) => match r.tag("option tag")? {
            false => Val::Option(None),
            true => {
                r.charge_vals(1)?;
                Val::Option(Some(Box::new(read(r, &o.ty(), h)?)))
            }
        },
        Type::Result(rt) => match r.tag("result tag")? {
            false => Val::Result(Ok(read_payload(r, rt.ok(), h)?)),
            true => Val::Result(Err(read_payload(r, rt.err(), h)?)),
        },
        Type::Flags(f) => {
            let at = r.pos;
            let n = f.names().len();
            let bytes = r.take(n.div_ceil(8), "flags")?;
            if let Some(&last) = bytes.last()
                && n % 8 != 0
                && last >> (n % 8) != 0
            {
                return Err(malformed(format_args!(
                    "flags at byte {at} set bits past the type's {n} flags"
                )));
            }
            r.charge(
                f.names()
                    .map(|n| n.len() + std::mem::size_of::<String>())
                    .sum(),
            )?;
            Val::Flags(
                f.names()
                    .enumerate()
                    .filter(|(i, _)| bytes[i / 8] & (1 << (i % 8)) != 0)
                    .map(|(_, name)| name.to_string())
                    .collect(),
            )
        }
        Type::Own(_) | Type::Borrow(_) => {
            let handle = r.uleb(32, "resource handle")? as u32;
            Val::Resource(h.lift(handle, ty)?)
        }
        Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err(unsupported_error(ty));
        }
    })
}

fn read_payload(
    r: &mut Reader<'_>,
    ty: Option<Type>,
    h: &mut dyn Handles,
) -> Result<Option<Box<Val>>> {
    Ok(match ty {
        Some(ty) => {
            r.charge_vals(1)?;
            Some(Box::new(read(r, &ty, h)?))
        }
        None => None,
    })
}

/// `n` elements; the caller has checked `n` against the input with [`Reader::reserve`].
fn read_seq(r: &mut Reader<'_>, n: usize, elem: &Type, h: &mut dyn Handles) -> Result<Vec<Val>> {
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(read(r, elem, h)?);
    }
    Ok(items)
}

/// Whether values of `ty` encode to no bytes at all.
fn encodes_empty(ty: &Type) -> bool {
    match ty {
        Type::Record(r) => r.fields().all(|f| encodes_empty(&f.ty)),
        Type::Tuple(t) => t.types().all(|t| encodes_empty(&t)),
        Type::Flags(f) => f.names().len() == 0,
        Type::FixedLengthList(l) => l.len() == 0 || encodes_empty(&l.ty()),
        _ => false,
    }
}

/// The input of one decode, and how far it has got.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// How many more elements of types that encode to no bytes this decode may produce.
    empty_budget: usize,
    /// How many more bytes of host memory the decoded values may take, counted as
    /// wasmtime counts a lift against `hostcall` fuel: `size_of::<Val>()` per element,
    /// the bytes of strings and names. A byte of `list<u8>` becomes a 32-byte `Val`, so
    /// without this a frame within its size could take many times its size in memory.
    memory: usize,
    /// The budget at the start, for the error.
    limit: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], budget: usize) -> Self {
        Reader {
            bytes,
            pos: 0,
            empty_budget: MAX_EMPTY_ELEMENTS,
            memory: budget,
            limit: budget,
        }
    }

    /// Takes `bytes` of the memory budget, before they are allocated.
    #[inline]
    fn charge(&mut self, bytes: usize) -> Result<()> {
        match self.memory.checked_sub(bytes) {
            Some(left) => {
                self.memory = left;
                Ok(())
            }
            None => Err(Error::new(
                ErrorKind::HostcallLimit,
                format!(
                    "the values would take more than {} bytes of host memory (the module's limits.hostcall); \
                     lower what crosses, or raise the limit",
                    self.limit
                ),
            )),
        }
    }

    /// Takes `n` values' worth of the memory budget.
    #[inline]
    fn charge_vals(&mut self, n: usize) -> Result<()> {
        self.charge(n.saturating_mul(std::mem::size_of::<Val>()))
    }

    #[inline]
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Fails unless the whole input has been read.
    fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(malformed(format_args!(
                "{n} bytes after the last value, at byte {}",
                self.pos
            ))),
        }
    }

    #[inline]
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.truncated(what, n));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    #[inline]
    fn byte(&mut self, what: &str) -> Result<u8> {
        match self.bytes.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.truncated(what, 1)),
        }
    }

    /// A `bool`, or the tag of an option or result: 0 or 1.
    #[inline]
    fn tag(&mut self, what: &str) -> Result<bool> {
        let at = self.pos;
        match self.byte(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(malformed(format_args!(
                "{what} at byte {at} is {b:#04x}, not 0 or 1"
            ))),
        }
    }

    /// Checks that `n` elements, each at least a byte unless `empty`, can be in the input.
    fn reserve(&mut self, n: usize, empty: bool, at: usize, what: &str) -> Result<()> {
        if empty {
            if n > self.empty_budget {
                return Err(malformed(format_args!(
                    "{what} at byte {at} declares {n} empty elements, more than the {} allowed",
                    self.empty_budget
                )));
            }
            self.empty_budget -= n;
        } else if n > self.remaining() {
            return Err(malformed(format_args!(
                "{what} at byte {at} declares {n} elements, but only {} bytes remain",
                self.remaining()
            )));
        }
        Ok(())
    }

    /// An unsigned LEB128 integer of `bits` bits: at most `ceil(bits / 7)` bytes, and no
    /// bits set past `bits`.
    #[inline]
    fn uleb(&mut self, bits: u32, what: &str) -> Result<u64> {
        let at = self.pos;
        let max = bits.div_ceil(7) as usize;
        let mut n = 0u64;
        for i in 0..max {
            let Some(&b) = self.bytes.get(at + i) else {
                return Err(self.truncated(what, i + 1));
            };
            let shift = 7 * i as u32;
            let payload = u64::from(b & 0x7f);
            if i + 1 == max && (b & 0x80 != 0 || payload >> (bits - shift) != 0) {
                return Err(overlong(what, at, bits));
            }
            n |= payload << shift;
            if b & 0x80 == 0 {
                self.pos = at + i + 1;
                return Ok(n);
            }
        }
        Err(overlong(what, at, bits))
    }

    /// A signed LEB128 integer of `bits` bits: at most `ceil(bits / 7)` bytes, and the bits
    /// past `bits` in the last one a copy of the sign.
    #[inline]
    fn sleb(&mut self, bits: u32, what: &str) -> Result<i64> {
        let at = self.pos;
        let max = bits.div_ceil(7) as usize;
        let mut n = 0i64;
        for i in 0..max {
            let Some(&b) = self.bytes.get(at + i) else {
                return Err(self.truncated(what, i + 1));
            };
            let shift = 7 * i as u32;
            let payload = b & 0x7f;
            if i + 1 == max {
                // The sign bit and the unused bits above it.
                let high = payload >> (bits - shift - 1);
                let all = 0x7f >> (bits - shift - 1);
                if b & 0x80 != 0 || (high != 0 && high != all) {
                    return Err(overlong(what, at, bits));
                }
            }
            n |= i64::from(payload) << shift;
            if b & 0x80 == 0 {
                let end = shift + 7;
                if end < 64 && payload & 0x40 != 0 {
                    n |= -1i64 << end;
                }
                self.pos = at + i + 1;
                return Ok(n);
            }
        }
        Err(overlong(what, at, bits))
    }

    fn char(&mut self) -> Result<char> {
        let at = self.pos;
        let len = match self.bytes.get(at) {
            None => return Err(self.truncated("char", 1)),
            Some(0x00..=0x7f) => 1,
            Some(0xc2..=0xdf) => 2,
            Some(0xe0..=0xef) => 3,
            Some(0xf0..=0xf4) => 4,
            Some(_) => 0,
        };
        let c = match len {
            0 => None,
            _ => std::str::from_utf8(self.take(len, "char")?)
                .ok()
                .and_then(|s| s.chars().next()),
        };
        c.ok_or_else(|| {
            malformed(format_args!(
                "char at byte {at} is not a Unicode scalar value in UTF-8"
            ))
        })
    }

    fn string(&mut self) -> Result<String> {
        let at = self.pos;
        let n = self.uleb(32, "string length")? as usize;
        let start = self.pos;
        let bytes = self.take(n, "string")?;
        self.charge(n)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(malformed(format_args!(
                "string at byte {at} is not UTF-8 (at byte {})",
                start + e.valid_up_to()
            ))),
        }
    }

    #[cold]
    fn truncated(&self, what: &str, need: usize) -> Error {
        malformed(format_args!(
            "the input ends inside the {what} at byte {}: it needs {need} bytes, {} remain",
            self.pos,
            self.remaining()
        ))
    }
}

#[cold]
fn overlong(what: &str, at: usize, bits: u32) -> Error {
    malformed(format_args!(
        "{what} at byte {at} is not a LEB128 integer of {bits} bits (too long or out of range)"
    ))
}

/// The other side sent bytes that are not a value of the expected type.
#[cold]
fn malformed(message: fmt::Arguments<'_>) -> Error {
    Error::new(ErrorKind::Crashed, message.to_string())
}

/// A value does not fit its type.
#[cold]
fn invalid(message: impl fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidArgs, message.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use wasmtime::component::types::ComponentItem;
    use wasmtime::component::{Component, Resource};
    use wasmtime::{Engine, Store};

    use super::*;

    /// A memory budget no test value comes near.
    const BIG: usize = 1 << 30;

    /// An exported interface whose function parameters cover every type the encoding has.
    fn wit() -> String {
        let thirty_two: Vec<String> = (0..32).map(|i| format!("g{i}")).collect();
        format!(
            r#"
package test:wire;

interface all {{
  record point {{ x: s32, y: s32 }}
  record shapes {{ name: string, points: list<point>, note: option<string> }}
  variant shape {{ nothing, circle(f64), named(string), at(point) }}
  enum color {{ red, green, blue }}
  flags three {{ a, b, c }}
  flags nine {{ f0, f1, f2, f3, f4, f5, f6, f7, f8 }}
  flags thirty-two {{ {} }}
  resource res;

  scalars: func(a: bool, b: s8, c: u8, d: s16, e: u16, f: s32, g: u32, h: s64, i: u64,
                j: f32, k: f64, l: char, m: string);
  lists: func(a: list<u8>, b: list<list<string>>, c: list<point>, d: list<u64>, e: list<s8>);
  compounds: func(a: point, b: shapes, c: tuple<u8, string, bool>, d: shape, e: color,
                  f: option<option<u32>>);
  results: func(a: result, b: result<u32>, c: result<_, string>, d: result<point, color>);
  flag-sets: func(a: three, b: nine, c: thirty-two);
  handles: func(a: own<res>, b: borrow<res>, c: option<res>);
}}

world w {{ export all; }}
"#,
            thirty_two.join(", ")
        )
    }

    fn component() -> &'static (Engine, Component) {
        static C: OnceLock<(Engine, Component)> = OnceLock::new();
        C.get_or_init(|| {
            let mut resolve = wit_parser::Resolve::default();
            let pkg = resolve.push_str("wire.wit", &wit()).expect("WIT parses");
            let world = resolve.select_world(&[pkg], Some("w")).expect("world");
            let mut module = wit_component::dummy_module(
                &resolve,
                world,
                wit_parser::ManglingAndAbi::Standard32,
            );
            wit_component::embed_component_metadata(
                &mut module,
                &resolve,
                world,
                wit_component::StringEncoding::UTF8,
            )
            .unwrap();
            let bytes = wit_component::ComponentEncoder::default()
                .module(&module)
                .unwrap()
                .validate(true)
                .encode()
                .expect("component encodes");
            let engine = Engine::default();
            let component = Component::new(&engine, bytes).expect("component compiles");
            (engine, component)
        })
    }

    /// The parameter types of the exported function `func`.
    fn types(func: &str) -> Vec<Type> {
        let (engine, component) = component();
        let ty = component.component_type();
        let Some(ComponentItem::ComponentInstance(all)) =
            ty.get_export(engine, "test:wire/all").map(|e| e.ty)
        else {
            panic!("no interface export");
        };
        let Some(ComponentItem::ComponentFunc(f)) = all.get_export(engine, func).map(|e| e.ty)
        else {
            panic!("no function `{func}`");
        };
        f.params().map(|(_, t)| t).collect()
    }

    fn s(x: &str) -> Val {
        Val::String(x.into())
    }

    fn some(v: Val) -> Val {
        Val::Option(Some(Box::new(v)))
    }

    fn record(fields: Vec<(&str, Val)>) -> Val {
        Val::Record(fields.into_iter().map(|(n, v)| (n.into(), v)).collect())
    }

    fn point(x: i32, y: i32) -> Val {
        record(vec![("x", Val::S32(x)), ("y", Val::S32(y))])
    }

    fn flags(names: &[&str]) -> Val {
        Val::Flags(names.iter().map(|n| n.to_string()).collect())
    }

    fn bytes_of(v: &[u8]) -> Val {
        Val::List(v.iter().map(|&b| Val::U8(b)).collect())
    }

    fn scalar_rows() -> Vec<Vec<Val>> {
        let bools = [false, true];
        let s8s = [0, -1, 1, i8::MIN, i8::MAX, 63, 64, -64, -65];
        let u8s = [0, 1, 127, 128, 255];
        let s16s = [
            0,
            -1,
            i16::MIN,
            i16::MAX,
            63,
            64,
            -64,
            -65,
            8191,
            8192,
            -8192,
            -8193,
        ];
        let u16s = [0, 127, 128, 16383, 16384, u16::MAX];
        let s32s = [0, -1, i32::MIN, i32::MAX, 64, -65, 1 << 27, -(1 << 27) - 1];
        let u32s = [0, 127, 128, 300, 1 << 28, u32::MAX];
        let s64s = [0, -1, i64::MIN, i64::MAX, 1 << 62, -(1 << 62) - 1, 1 << 56];
        let u64s = [0, u64::MAX, 1 << 63, 1 << 56, 300];
        let f32s = [
            0.0,
            -0.0,
            1.5,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
            f32::MAX,
        ];
        let f64s = [
            0.0,
            -0.0,
            -2.25,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            f64::MIN,
        ];
        let chars = [
            'a',
            '\0',
            'é',
            '€',
            '😀',
            '\u{10FFFF}',
            '\u{D7FF}',
            '\u{E000}',
        ];
        let long = "x".repeat(200);
        let strings = ["", "hi", "héllo wörld 😀", &long, "\0"];
        (0..12)
            .map(|i| {
                vec![
                    Val::Bool(bools[i % bools.len()]),
                    Val::S8(s8s[i % s8s.len()]),
                    Val::U8(u8s[i % u8s.len()]),
                    Val::S16(s16s[i % s16s.len()]),
                    Val::U16(u16s[i % u16s.len()]),
                    Val::S32(s32s[i % s32s.len()]),
                    Val::U32(u32s[i % u32s.len()]),
                    Val::S64(s64s[i % s64s.len()]),
                    Val::U64(u64s[i % u64s.len()]),
                    Val::Float32(f32s[i % f32s.len()]),
                    Val::Float64(f64s[i % f64s.len()]),
                    Val::Char(chars[i % chars.len()]),
                    s(strings[i % strings.len()]),
                ]
            })
            .collect()
    }

    /// Every test function with argument lists for it.
    fn samples() -> Vec<(&'static str, Vec<Vec<Val>>)> {
        let all_bytes: Vec<u8> = (0..=255).collect();
        let many: Vec<u8> = (0..300).map(|i| i as u8).collect();
        let shapes = |name: &str, points: Vec<Val>, note: Option<&str>| {
            record(vec![
                ("name", s(name)),
                ("points", Val::List(points)),
                ("note", Val::Option(note.map(|n| Box::new(s(n))))),
            ])
        };
        let case = |c: &str, v: Option<Val>| Val::Variant(c.into(), v.map(Box::new));
        let nine: Vec<String> = (0..9).map(|i| format!("f{i}")).collect();
        let thirty_two: Vec<String> = (0..32).map(|i| format!("g{i}")).collect();
        vec![
            ("scalars", scalar_rows()),
            (
                "lists",
                vec![
                    vec![
                        bytes_of(&[]),
                        Val::List(vec![]),
                        Val::List(vec![]),
                        Val::List(vec![]),
                        Val::List(vec![]),
                    ],
                    vec![
                        bytes_of(&all_bytes),
                        Val::List(vec![
                            Val::List(vec![]),
                            Val::List(vec![s("a")]),
                            Val::List(vec![s("b"), s("ç")]),
                        ]),
                        Val::List(vec![point(1, 2), point(-3, i32::MIN)]),
                        Val::List(vec![Val::U64(u64::MAX), Val::U64(0)]),
                        Val::List(vec![Val::S8(-1), Val::S8(127)]),
                    ],
                    vec![
                        bytes_of(&many),
                        Val::List(vec![Val::List(vec![s(""); 3])]),
                        Val::List(vec![point(0, 0); 130]),
                        Val::List((0..200).map(Val::U64).collect()),
                        Val::List(vec![Val::S8(i8::MIN)]),
                    ],
                ],
            ),
            (
                "compounds",
                vec![
                    vec![
                        point(0, 0),
                        shapes("", vec![], None),
                        Val::Tuple(vec![Val::U8(0), s(""), Val::Bool(false)]),
                        case("nothing", None),
                        Val::Enum("red".into()),
                        Val::Option(None),
                    ],
                    vec![
                        point(i32::MAX, i32::MIN),
                        shapes("s", vec![point(1, 2), point(3, 4)], Some("n")),
                        Val::Tuple(vec![Val::U8(255), s("ü"), Val::Bool(true)]),
                        case("circle", Some(Val::Float64(2.5))),
                        Val::Enum("green".into()),
                        some(Val::Option(None)),
                    ],
                    vec![
                        point(-1, 1),
                        shapes("😀", vec![point(-1, -1)], Some("")),
                        Val::Tuple(vec![Val::U8(7), s("tuple"), Val::Bool(true)]),
                        case("named", Some(s("name"))),
                        Val::Enum("blue".into()),
                        some(some(Val::U32(7))),
                    ],
                    vec![
                        point(5, 6),
                        shapes("x", vec![], None),
                        Val::Tuple(vec![Val::U8(1), s("a"), Val::Bool(false)]),
                        case("at", Some(point(1, -1))),
                        Val::Enum("red".into()),
                        some(some(Val::U32(u32::MAX))),
                    ],
                ],
            ),
            (
                "results",
                vec![
                    vec![
                        Val::Result(Ok(None)),
                        Val::Result(Ok(Some(Box::new(Val::U32(0))))),
                        Val::Result(Ok(None)),
                        Val::Result(Ok(Some(Box::new(point(1, 2))))),
                    ],
                    vec![
                        Val::Result(Err(None)),
                        Val::Result(Err(None)),
                        Val::Result(Err(Some(Box::new(s("bad"))))),
                        Val::Result(Err(Some(Box::new(Val::Enum("blue".into()))))),
                    ],
                ],
            ),
            (
                "flag-sets",
                vec![
                    vec![flags(&[]), flags(&[]), flags(&[])],
                    vec![
                        flags(&["a", "b", "c"]),
                        Val::Flags(nine),
                        Val::Flags(thirty_two),
                    ],
                    vec![
                        flags(&["b"]),
                        flags(&["f8"]),
                        flags(&["g0", "g7", "g8", "g31"]),
                    ],
                ],
            ),
        ]
    }

    /// Encodes `vals`, checks that every decoder gives them back, and returns the bytes.
    fn round_trip(tys: &[Type], vals: &[Val]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_all(vals, tys, &mut out, &mut NoHandles).unwrap();
        assert_eq!(decode_all(&out, tys, &mut NoHandles, BIG).unwrap(), vals);
        let mut slots = vec![Val::Bool(false); tys.len()];
        decode_into(&out, tys, &mut slots, &mut NoHandles, BIG).unwrap();
        assert_eq!(slots, vals);
        let mut input = &out[..];
        for (ty, v) in tys.iter().zip(vals) {
            let mut one = Vec::new();
            encode(v, ty, &mut one, &mut NoHandles).unwrap();
            assert!(input.starts_with(&one));
            assert_eq!(&decode(&mut input, ty, &mut NoHandles, BIG).unwrap(), v);
        }
        assert!(input.is_empty());
        out
    }

    fn encoded(v: Val, ty: &Type) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&v, ty, &mut out, &mut NoHandles).unwrap();
        assert_eq!(
            decode_all(&out, std::slice::from_ref(ty), &mut NoHandles, BIG).unwrap(),
            [v]
        );
        out
    }

    fn decoded(input: &[u8], ty: &Type) -> Val {
        decode_all(input, std::slice::from_ref(ty), &mut NoHandles, BIG)
            .unwrap()
            .remove(0)
    }

    /// Decoding `input` fails as malformed; returns the message.
    fn bad(input: &[u8], ty: &Type) -> String {
        let e = decode_all(input, std::slice::from_ref(ty), &mut NoHandles, BIG).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Crashed, "{e}");
        e.to_string()
    }

    /// Encoding `v` fails as not fitting its type, and leaves the output alone.
    fn unfit(v: Val, ty: &Type) -> String {
        let mut out = vec![9, 9];
        let e = encode(&v, ty, &mut out, &mut NoHandles).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgs, "{e}");
        assert_eq!(out, [9, 9]);
        e.to_string()
    }

    #[test]
    fn every_sample_round_trips() {
        let mut n = 0;
        for (func, rows) in samples() {
            let tys = types(func);
            assert!(tys.iter().all(|t| unsupported(t).is_none()));
            for vals in rows {
                round_trip(&tys, &vals);
                n += 1;
            }
        }
        assert!(n > 20);
    }

    #[test]
    fn float_bits_survive() {
        let t = types("scalars");
        for bits in [0x7fc0_0001u32, 0xffc0_0000, 0x7f80_0001, 0x8000_0000] {
            let out = encoded(Val::Float32(f32::from_bits(bits)), &t[9]);
            assert_eq!(out, bits.to_le_bytes());
            let Val::Float32(x) = decoded(&out, &t[9]) else {
                panic!()
            };
            assert_eq!(x.to_bits(), bits);
        }
        let bits = 0x7ff8_0000_0000_0001u64;
        let out = encoded(Val::Float64(f64::from_bits(bits)), &t[10]);
        let Val::Float64(x) = decoded(&out, &t[10]) else {
            panic!()
        };
        assert_eq!(x.to_bits(), bits);
    }

    #[test]
    fn exact_bytes() {
        let t = types("scalars");
        assert_eq!(encoded(Val::Bool(true), &t[0]), [1]);
        assert_eq!(encoded(Val::S8(-2), &t[1]), [0xfe]);
        assert_eq!(encoded(Val::U8(200), &t[2]), [200]);
        assert_eq!(encoded(Val::S16(i16::MIN), &t[3]), [0x80, 0x80, 0x7e]);
        assert_eq!(encoded(Val::U16(u16::MAX), &t[4]), [0xff, 0xff, 0x03]);
        assert_eq!(encoded(Val::S32(-1), &t[5]), [0x7f]);
        assert_eq!(encoded(Val::S32(63), &t[5]), [0x3f]);
        assert_eq!(encoded(Val::S32(64), &t[5]), [0xc0, 0x00]);
        assert_eq!(encoded(Val::S32(-65), &t[5]), [0xbf, 0x7f]);
        assert_eq!(
            encoded(Val::S32(i32::MIN), &t[5]),
            [0x80, 0x80, 0x80, 0x80, 0x78]
        );
        assert_eq!(encoded(Val::U32(300), &t[6]), [0xac, 0x02]);
        assert_eq!(
            encoded(Val::U32(u32::MAX), &t[6]),
            [0xff, 0xff, 0xff, 0xff, 0x0f]
        );
        let mut min = vec![0x80; 9];
        min.push(0x7f);
        assert_eq!(encoded(Val::S64(i64::MIN), &t[7]), min);
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(encoded(Val::U64(u64::MAX), &t[8]), max);
        assert_eq!(encoded(Val::Float32(1.0), &t[9]), [0, 0, 0x80, 0x3f]);
        assert_eq!(
            encoded(Val::Float64(-2.0), &t[10]),
            [0, 0, 0, 0, 0, 0, 0, 0xc0]
        );
        assert_eq!(encoded(Val::Char('a'), &t[11]), [b'a']);
        assert_eq!(encoded(Val::Char('😀'), &t[11]), [0xf0, 0x9f, 0x98, 0x80]);
        assert_eq!(encoded(s("hi"), &t[12]), [2, b'h', b'i']);
        assert_eq!(encoded(s(""), &t[12]), [0]);

        let l = types("lists");
        assert_eq!(encoded(bytes_of(&[1, 2, 3]), &l[0]), [3, 1, 2, 3]);
        assert_eq!(
            encoded(Val::List(vec![Val::List(vec![s("a")])]), &l[1]),
            [1, 1, 1, b'a']
        );

        let c = types("compounds");
        assert_eq!(encoded(point(1, -1), &c[0]), [1, 0x7f]);
        assert_eq!(
            encoded(Val::Tuple(vec![Val::U8(5), s("x"), Val::Bool(true)]), &c[2]),
            [5, 1, b'x', 1]
        );
        let at = Val::Variant("at".into(), Some(Box::new(point(1, -1))));
        assert_eq!(encoded(at, &c[3]), [3, 1, 0x7f]);
        assert_eq!(encoded(Val::Variant("nothing".into(), None), &c[3]), [0]);
        assert_eq!(encoded(Val::Enum("blue".into()), &c[4]), [2]);
        assert_eq!(encoded(Val::Option(None), &c[5]), [0]);
        assert_eq!(encoded(some(Val::Option(None)), &c[5]), [1, 0]);
        assert_eq!(encoded(some(some(Val::U32(5))), &c[5]), [1, 1, 5]);

        let r = types("results");
        assert_eq!(encoded(Val::Result(Ok(None)), &r[0]), [0]);
        assert_eq!(encoded(Val::Result(Err(None)), &r[0]), [1]);
        assert_eq!(
            encoded(Val::Result(Ok(Some(Box::new(Val::U32(300))))), &r[1]),
            [0, 0xac, 0x02]
        );
        assert_eq!(
            encoded(Val::Result(Err(Some(Box::new(s("x"))))), &r[2]),
            [1, 1, b'x']
        );

        let f = types("flag-sets");
        assert_eq!(encoded(flags(&["a", "c"]), &f[0]), [0b101]);
        assert_eq!(encoded(flags(&["f0", "f8"]), &f[1]), [0x01, 0x01]);
        assert_eq!(encoded(flags(&["f7"]), &f[1]), [0x80, 0x00]);
        assert_eq!(
            encoded(flags(&["g0", "g24", "g31"]), &f[2]),
            [0x01, 0, 0, 0x81]
        );
        assert_eq!(encoded(flags(&[]), &f[2]), [0; 4]);
    }

    #[test]
    fn padded_leb128_within_the_width_is_accepted() {
        let t = types("scalars");
        assert_eq!(decoded(&[0x80, 0x00], &t[6]), Val::U32(0));
        assert_eq!(
            decoded(&[0xff, 0x80, 0x80, 0x80, 0x00], &t[6]),
            Val::U32(127)
        );
        assert_eq!(decoded(&[0xff, 0x7f], &t[5]), Val::S32(-1));
        assert_eq!(decoded(&[0xff, 0xff, 0x03], &t[4]), Val::U16(u16::MAX));
        assert_eq!(decoded(&[0xff, 0xff, 0x01], &t[3]), Val::S16(i16::MAX));
        assert_eq!(decoded(&[0x80, 0x80, 0x7e], &t[3]), Val::S16(i16::MIN));
        let mut max = vec![0xff; 9];
        max.push(0x00);
        assert_eq!(decoded(&max, &t[7]), Val::S64(i64::MAX));
    }

    #[test]
    fn overlong_or_overflowing_leb128_is_refused() {
        let t = types("scalars");
        let cases: &[(&[u8], usize)] = &[
            (&[0xff, 0xff, 0x04], 4),
            (&[0x80, 0x80, 0x80, 0x00], 4),
            (&[0x80, 0x80, 0x80], 4),
            (&[0xff, 0xff, 0xff, 0xff, 0x10], 6),
            (&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 6),
            (&[0x80, 0x80, 0x80, 0x80, 0x80], 6),
            (&[0x80, 0x80, 0x02], 3),
            (&[0x80, 0x80, 0x7c], 3),
            (&[0xff, 0xff, 0xff, 0xff, 0x08], 5),
            (&[0x80, 0x80, 0x80, 0x80, 0x70], 5),
            (&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 5),
        ];
        for (input, i) in cases {
            let msg = bad(input, &t[*i]);
            assert!(msg.contains("byte 0"), "{msg}");
        }
        let mut u64_over = vec![0xff; 9];
        u64_over.push(0x02);
        bad(&u64_over, &t[8]);
        let mut u64_long = vec![0x80; 10];
        u64_long.push(0x00);
        bad(&u64_long, &t[8]);
        let mut s64_over = vec![0x80; 9];
        s64_over.push(0x01);
        bad(&s64_over, &t[7]);
        let mut s64_mixed = vec![0xff; 9];
        s64_mixed.push(0x40);
        bad(&s64_mixed, &t[7]);
    }

    #[test]
    fn malformed_scalars_are_refused() {
        let t = types("scalars");
        assert!(bad(&[2], &t[0]).contains("bool at byte 0 is 0x02"));
        bad(&[], &t[0]);
        bad(&[], &t[2]);
        bad(&[0, 0, 0x80], &t[9]);
        bad(&[0; 7], &t[10]);
        for c in [
            &[0xff][..],
            &[0x80],
            &[0xc0, 0x80],
            &[0xc3],
            &[0xc3, 0x28],
            &[0xed, 0xa0, 0x80],
            &[0xe2, 0x82],
            &[0xf4, 0x90, 0x80, 0x80],
            &[0xf5, 0x80, 0x80, 0x80],
            &[0xf0, 0x9f, 0x98],
        ] {
            bad(c, &t[11]);
        }
        let msg = bad(&[3, b'a', 0xc3, 0x28], &t[12]);
        assert!(
            msg.contains("string at byte 0 is not UTF-8 (at byte 2)"),
            "{msg}"
        );
        bad(&[3, 0xed, 0xa0, 0x80], &t[12]);
        bad(&[3, b'a', b'b'], &t[12]);
        let msg = bad(&[0xff, 0xff, 0xff, 0xff, 0x0f, b'a'], &t[12]);
        assert!(msg.contains("ends inside the string"), "{msg}");
    }

    #[test]
    fn malformed_compounds_are_refused() {
        let huge = [0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3];
        let l = types("lists");
        for ty in &l {
            bad(&huge, ty);
        }
        let msg = bad(&huge, &l[3]);
        assert!(msg.contains("declares 4294967295 elements"), "{msg}");
        bad(&[2, 1], &l[0]);

        let c = types("compounds");
        assert!(bad(&[4], &c[3]).contains("variant case index 4 at byte 0 is out of range"));
        bad(&[0xff, 0xff, 0xff, 0xff, 0x0f], &c[3]);
        bad(&[1], &c[3]);
        assert!(bad(&[3], &c[4]).contains("enum case index 3"));
        assert!(bad(&[2], &c[5]).contains("option tag at byte 0 is 0x02"));
        bad(&[1, 2], &c[5]);
        bad(&[1, 1], &c[5]);

        let r = types("results");
        assert!(bad(&[2], &r[0]).contains("result tag"));
        bad(&[0], &r[1]);
        bad(&[0, 0], &r[0]);

        let f = types("flag-sets");
        assert!(bad(&[0x08], &f[0]).contains("past the type's 3 flags"));
        bad(&[0x00, 0x02], &f[1]);
        bad(&[0x00], &f[1]);
        bad(&[0, 0, 0], &f[2]);
    }

    #[test]
    fn every_truncation_and_any_trailing_byte_is_refused() {
        for (func, rows) in samples() {
            let tys = types(func);
            for vals in rows {
                let out = round_trip(&tys, &vals);
                for k in 0..out.len() {
                    let e = decode_all(&out[..k], &tys, &mut NoHandles, BIG).unwrap_err();
                    assert_eq!(e.kind(), ErrorKind::Crashed, "{func} at {k}: {e}");
                }
                let mut longer = out.clone();
                longer.push(0);
                let e = decode_all(&longer, &tys, &mut NoHandles, BIG).unwrap_err();
                assert!(
                    e.to_string().contains("1 bytes after the last value"),
                    "{e}"
                );
                let mut slots = vec![Val::Bool(false); tys.len()];
                decode_into(&longer, &tys, &mut slots, &mut NoHandles, BIG).unwrap_err();
            }
        }
    }

    #[test]
    fn decoded_values_are_charged_as_wasmtime_charges_a_lift() {
        let ty = types("lists")[0].clone();
        let n = 1 << 20;
        let mut out = Vec::new();
        encode(
            &Val::List(vec![Val::U8(7); n]),
            &ty,
            &mut out,
            &mut NoHandles,
        )
        .unwrap();
        // A MiB on the wire is 32 MiB of `Val`s: refused with a MiB of budget, before any
        // of it is allocated ...
        let e = decode_all(&out, std::slice::from_ref(&ty), &mut NoHandles, n).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::HostcallLimit, "{e}");
        // ... and taken with what it needs.
        let need = n * std::mem::size_of::<Val>();
        assert!(decode_all(&out, std::slice::from_ref(&ty), &mut NoHandles, need).is_ok());
        // Strings count their bytes.
        let mut out = Vec::new();
        let string = types("scalars")[12].clone();
        encode(
            &Val::String("x".repeat(100)),
            &string,
            &mut out,
            &mut NoHandles,
        )
        .unwrap();
        let e = decode_all(&out, &[Type::String], &mut NoHandles, 99).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::HostcallLimit);
        assert!(decode_all(&out, &[Type::String], &mut NoHandles, 100).is_ok());
    }

    #[test]
    fn decode_moves_past_one_value_only() {
        let t = types("scalars");
        let mut out = Vec::new();
        encode(&Val::U32(300), &t[6], &mut out, &mut NoHandles).unwrap();
        encode(&s("hi"), &t[12], &mut out, &mut NoHandles).unwrap();
        let mut input = &out[..];
        assert_eq!(
            decode(&mut input, &t[6], &mut NoHandles, BIG).unwrap(),
            Val::U32(300)
        );
        assert_eq!(input, [2, b'h', b'i']);
        let before = input;
        decode(&mut input, &t[0], &mut NoHandles, BIG).unwrap_err();
        assert_eq!(input, before, "a failed decode leaves the input alone");
        assert_eq!(
            decode(&mut input, &t[12], &mut NoHandles, BIG).unwrap(),
            s("hi")
        );
        assert!(input.is_empty());
    }

    #[test]
    fn values_that_do_not_fit_their_type_are_refused() {
        let t = types("scalars");
        assert!(unfit(Val::U32(1), &t[5]).contains("expected s32, got u32"));
        unfit(s("x"), &t[11]);
        let l = types("lists");
        assert!(unfit(Val::List(vec![Val::U8(1), Val::U16(2)]), &l[0]).contains("[1]"));
        unfit(Val::List(vec![Val::U8(1)]), &l[3]);
        let c = types("compounds");
        assert!(
            unfit(record(vec![("x", Val::S32(1)), ("z", Val::S32(2))]), &c[0])
                .contains("expected field `y`, got `z`")
        );
        unfit(record(vec![("x", Val::S32(1))]), &c[0]);
        let msg = unfit(record(vec![("x", Val::S32(1)), ("y", Val::U8(2))]), &c[0]);
        assert!(msg.contains(".y: expected s32, got u8"), "{msg}");
        unfit(Val::Tuple(vec![Val::U8(0)]), &c[2]);
        unfit(Val::Variant("square".into(), None), &c[3]);
        unfit(Val::Variant("circle".into(), None), &c[3]);
        unfit(
            Val::Variant("nothing".into(), Some(Box::new(Val::U8(1)))),
            &c[3],
        );
        unfit(Val::Enum("purple".into()), &c[4]);
        unfit(some(Val::U32(1)), &c[5]);
        let r = types("results");
        unfit(Val::Result(Ok(Some(Box::new(Val::U32(1))))), &r[0]);
        unfit(Val::Result(Ok(None)), &r[1]);
        let f = types("flag-sets");
        assert!(unfit(flags(&["a", "d"]), &f[0]).contains("no flag `d`"));

        let mut out = vec![7];
        let e = encode_all(&[Val::Bool(true)], &t, &mut out, &mut NoHandles).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgs);
        let e = encode_all(
            &[Val::Bool(true), Val::S8(0), Val::U16(0)],
            &t[..3],
            &mut out,
            &mut NoHandles,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("value 2: "), "{e}");
        assert_eq!(out, [7], "a failed encode leaves the output alone");
        let mut slots = vec![Val::Bool(false)];
        decode_into(&[1], &t[..2], &mut slots, &mut NoHandles, BIG).unwrap_err();
    }

    /// The parameter types of a function of maps and fixed-length lists, which need the
    /// engine's newer features.
    fn newer_types() -> Vec<Type> {
        static C: OnceLock<(Engine, Component)> = OnceLock::new();
        let (engine, component) = C.get_or_init(|| {
            let wit = "package test:newer;
                interface i { f: func(a: map<string, u32>, b: list<u8, 4>, c: list<string, 2>); }
                world w { export i; }";
            let mut resolve = wit_parser::Resolve::default();
            let pkg = resolve.push_str("newer.wit", wit).expect("WIT parses");
            let world = resolve.select_world(&[pkg], Some("w")).expect("world");
            let mut module = wit_component::dummy_module(
                &resolve,
                world,
                wit_parser::ManglingAndAbi::Standard32,
            );
            wit_component::embed_component_metadata(
                &mut module,
                &resolve,
                world,
                wit_component::StringEncoding::UTF8,
            )
            .unwrap();
            let bytes = wit_component::ComponentEncoder::default()
                .module(&module)
                .unwrap()
                .validate(true)
                .encode()
                .expect("component encodes");
            let mut config = wasmtime::Config::new();
            config.wasm_component_model_map(true);
            config.wasm_component_model_fixed_length_lists(true);
            let engine = Engine::new(&config).unwrap();
            let component = Component::new(&engine, bytes).expect("component compiles");
            (engine, component)
        });
        let ty = component.component_type();
        let Some(ComponentItem::ComponentInstance(i)) =
            ty.get_export(engine, "test:newer/i").map(|e| e.ty)
        else {
            panic!("no interface export");
        };
        let Some(ComponentItem::ComponentFunc(f)) = i.get_export(engine, "f").map(|e| e.ty) else {
            panic!("no function");
        };
        f.params().map(|(_, t)| t).collect()
    }

    #[test]
    fn maps_and_fixed_length_lists() {
        let t = newer_types();
        let map = |pairs: &[(&str, u32)]| {
            Val::Map(pairs.iter().map(|(k, v)| (s(k), Val::U32(*v))).collect())
        };
        let fixed = |items: Vec<Val>| Val::FixedLengthList(items);
        let rows = [
            vec![
                map(&[]),
                fixed(vec![Val::U8(0); 4]),
                fixed(vec![s(""), s("")]),
            ],
            vec![
                map(&[("a", 5), ("b", u32::MAX), ("a", 6)]),
                fixed((1..=4).map(Val::U8).collect()),
                fixed(vec![s("ö"), s("x")]),
            ],
        ];
        for vals in &rows {
            let out = round_trip(&t, vals);
            for k in 0..out.len() {
                decode_all(&out[..k], &t, &mut NoHandles, BIG).unwrap_err();
            }
        }
        assert_eq!(encoded(map(&[("a", 300)]), &t[0]), [1, 1, b'a', 0xac, 0x02]);
        assert_eq!(
            encoded(fixed((1..=4).map(Val::U8).collect()), &t[1]),
            [1, 2, 3, 4]
        );
        assert_eq!(encoded(fixed(vec![s("a"), s("")]), &t[2]), [1, b'a', 0]);
        bad(&[0xff, 0xff, 0xff, 0xff, 0x0f, 1, b'a', 0], &t[0]);
        bad(&[1, 2, 3], &t[1]);
        unfit(fixed(vec![Val::U8(0); 3]), &t[1]);
        unfit(Val::Map(vec![(Val::U32(1), Val::U32(1))]), &t[0]);
        let mut rng = Rng(7);
        for _ in 0..3000 {
            let input: Vec<u8> = (0..rng.below(24)).map(|_| rng.below(8) as u8).collect();
            shake(&input, &t);
        }
    }

    #[test]
    fn empty_elements_share_one_budget() {
        // No valid component has types that encode to no bytes today (empty records,
        // tuples, flags and fixed-length lists are refused), but the decoder must not
        // trust that.
        let mut r = Reader::new(&[], BIG);
        r.reserve(MAX_EMPTY_ELEMENTS - 1, true, 0, "list").unwrap();
        r.reserve(1, true, 0, "list").unwrap();
        let e = r.reserve(1, true, 0, "list").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Crashed);
        r.reserve(0, false, 0, "list").unwrap();
        r.reserve(1, false, 0, "list").unwrap_err();
    }

    /// Hands out handles in order and lifts only those.
    struct Table(Vec<ResourceAny>);

    impl Handles for Table {
        fn lower(&mut self, r: &ResourceAny, ty: &Type) -> Result<u32> {
            assert!(matches!(ty, Type::Own(_) | Type::Borrow(_)));
            self.0.push(*r);
            Ok(self.0.len() as u32 - 1)
        }

        fn lift(&mut self, handle: u32, _: &Type) -> Result<ResourceAny> {
            self.0
                .get(handle as usize)
                .copied()
                .ok_or_else(|| Error::new(ErrorKind::Crashed, format!("no handle {handle}")))
        }
    }

    #[test]
    fn resources_go_through_the_handle_map() {
        let (engine, _) = component();
        let mut store = Store::new(engine, ());
        let own = |rep, store: &mut Store<()>| {
            Resource::<u32>::new_own(rep)
                .try_into_resource_any(&mut *store)
                .unwrap()
        };
        let a = own(1, &mut store);
        // A borrowed `ResourceAny` exists only inside a call; an owned one may be lent.
        let b = own(2, &mut store);
        let c = own(3, &mut store);
        let tys = types("handles");
        let vals = [Val::Resource(a), Val::Resource(b), some(Val::Resource(c))];
        let mut table = Table(Vec::new());
        let mut out = Vec::new();
        encode_all(&vals, &tys, &mut out, &mut table).unwrap();
        assert_eq!(out, [0, 1, 1, 2]);
        assert_eq!(decode_all(&out, &tys, &mut table, BIG).unwrap(), vals);
        decode_all(&[0, 1, 1, 9], &tys, &mut table, BIG).unwrap_err();

        let e = encode(&Val::Resource(a), &tys[0], &mut out, &mut NoHandles).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgs);
        assert!(e.to_string().contains("maps no resource handles"), "{e}");
        let e = decode_all(&[0], &tys[..1], &mut NoHandles, BIG).unwrap_err();
        assert!(e.to_string().contains("maps no resource handles"), "{e}");
        bad(&[0x80], &tys[1]);
    }

    /// xorshift64*: deterministic, and enough to shake the decoder.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A decode of arbitrary bytes returns; when it succeeds, the values encode and decode
    /// to themselves.
    fn shake(input: &[u8], tys: &[Type]) {
        if let Ok(vals) = decode_all(input, tys, &mut NoHandles, BIG) {
            round_trip(tys, &vals);
        }
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut funcs: Vec<(Vec<Type>, Vec<Vec<u8>>)> = samples()
            .into_iter()
            .map(|(func, rows)| {
                let tys = types(func);
                let encodings = rows.iter().map(|vals| round_trip(&tys, vals)).collect();
                (tys, encodings)
            })
            .collect();
        funcs.push((types("handles"), vec![vec![0, 1, 1, 2]]));
        let mut ok = 0;
        for (tys, encodings) in &funcs {
            for _ in 0..3000 {
                let len = rng.below(48);
                let input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                shake(&input, tys);
                // Small bytes make valid tags, indexes and lengths more likely.
                let small: Vec<u8> = (0..len).map(|_| rng.below(4) as u8).collect();
                if decode_all(&small, tys, &mut NoHandles, BIG).is_ok() {
                    ok += 1;
                }
                shake(&small, tys);
            }
            for valid in encodings {
                for _ in 0..300 {
                    let mut m = valid.clone();
                    for _ in 0..=rng.below(3) {
                        match rng.below(4) {
                            0 if !m.is_empty() => {
                                let i = rng.below(m.len());
                                m[i] = rng.next() as u8;
                            }
                            1 if !m.is_empty() => {
                                let i = rng.below(m.len());
                                m[i] ^= 1 << rng.below(8);
                            }
                            2 => {
                                let i = rng.below(m.len() + 1);
                                m.insert(i, rng.next() as u8);
                            }
                            _ if !m.is_empty() => {
                                let i = rng.below(m.len());
                                m.remove(i);
                            }
                            _ => {}
                        }
                    }
                    shake(&m, tys);
                }
            }
        }
        assert!(ok > 0, "some random inputs should decode");
    }
}
