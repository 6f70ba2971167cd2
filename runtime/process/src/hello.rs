//! What a host tells a worker to run: the module's declaration as far as the worker needs
//! it, the engine's settings (so that the compiled code it is sent loads), and the sandbox
//! to apply before anything else.

use std::time::Duration;

use crate::spec::{Grants, Lifecycle, Limits};

/// The worker's instructions, sent as JSON with the compiled component after them.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Hello {
    /// The module's name.
    pub name: String,
    pub grants: Grants,
    pub limits: Limits,
    pub lifecycle: Lifecycle,
    /// The engine's settings, as the host's.
    pub epoch_tick: Duration,
    pub max_wasm_stack: usize,
    pub fuel: bool,
    /// The OS sandbox to apply.
    pub sandbox: crate::sandbox::Plan,
    /// The most verbose log level the host wants (0 error .. 4 trace).
    pub log_level: u8,
    /// The component is a WASI 0.3 one, compiled by the host's 0.3 engine.
    #[serde(default)]
    pub p3: bool,
}

impl Hello {
    /// The body of a `HELLO` frame: the JSON's length, the JSON, the compiled code.
    pub(crate) fn frame(&self, code: &[u8], out: &mut Vec<u8>) {
        let json = serde_json::to_vec(self).expect("plain data serializes");
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(code);
    }

    /// Reads a `HELLO` body: the instructions and the compiled code.
    pub(crate) fn read(body: &[u8]) -> Result<(Hello, &[u8]), String> {
        let len = body
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
            .ok_or("the start message is cut short")?;
        let json = body
            .get(4..4 + len)
            .ok_or("the start message is cut short")?;
        let hello = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        Ok((hello, &body[4 + len..]))
    }
}
