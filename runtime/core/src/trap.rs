//! A guest's failure as the host reports it: wasmtime's messages, with the wasm backtrace
//! rendered here so that every name in it (chosen by the guest's binary: function and module
//! names, debug-info symbols and file names) is escaped before it can reach a terminal or a
//! log.

use wasmtime::WasmBacktrace;

use crate::error::GuestFailure;
use crate::sanitize::escape;

/// Takes apart a wasmtime error from a call into a guest.
pub fn guest_failure(err: &wasmtime::Error) -> GuestFailure {
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
    GuestFailure::new(messages, frames)
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
