//! A guest's failure as the host reports it: wasmtime's messages, with the wasm backtrace
//! rendered here so that every name in it (chosen by the guest's binary: function and module
//! names, debug-info symbols and file names) is escaped before it can reach a terminal or a
//! log.

use std::fmt;

use wasmtime::WasmBacktrace;

use crate::sanitize::escape;

/// The cause of a failed guest call: what wasmtime said, and where in the guest it happened.
#[derive(Debug)]
pub(crate) struct GuestFailure {
    /// wasmtime's messages, outermost first, each escaped.
    messages: Vec<String>,
    /// One escaped line per frame, innermost first.
    frames: Vec<String>,
}

impl GuestFailure {
    /// Takes apart a wasmtime error from a call into a guest.
    pub(crate) fn new(err: &wasmtime::Error) -> Self {
        let bt = err.downcast_ref::<WasmBacktrace>();
        let frames = bt.map(render_frames).unwrap_or_default();
        // The backtrace is a layer of the chain; its own text carries the raw names.
        let bt_text = bt.map(|b| b.to_string());
        let messages = err
            .chain()
            .map(|c| c.to_string())
            .filter(|text| Some(text) != bt_text.as_ref())
            .map(|text| escape(&text).into_owned())
            .collect();
        GuestFailure { messages, frames }
    }
}

fn render_frames(bt: &WasmBacktrace) -> Vec<String> {
    bt.frames()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let module = f.module().name().map(escape).unwrap_or("<module>".into());
            let func = match f.func_name() {
                Some(n) => escape(n).into_owned(),
                None => format!("<function {}>", f.func_index()),
            };
            let mut line = format!("{i:>4}: {module}!{func}");
            if let Some(sym) = f.symbols().first()
                && let Some(file) = sym.file()
            {
                line.push_str(&format!(" at {}", escape(file)));
                if let Some(l) = sym.line() {
                    line.push_str(&format!(":{l}"));
                }
            }
            line
        })
        .collect()
}

impl fmt::Display for GuestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.messages.is_empty() {
            f.write_str("the guest failed")?;
        } else {
            f.write_str(&self.messages.join(": "))?;
        }
        if !self.frames.is_empty() {
            f.write_str("\nwasm backtrace:")?;
            for frame in &self.frames {
                write!(f, "\n{frame}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for GuestFailure {}
