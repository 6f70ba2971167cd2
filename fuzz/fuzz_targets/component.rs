//! Loading arbitrary bytes as a component: validation, the pre-compile scan, compilation and
//! linking must refuse bad input with an error, never panic or crash. A component that loads
//! has every root-level function without parameters called once, under tight limits.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use membrane::{AppSpec, Config, ModuleSpec, Runtime};

fn setup() -> &'static (tokio::runtime::Runtime, Runtime) {
    static SETUP: OnceLock<(tokio::runtime::Runtime, Runtime)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let mut config = Config::default();
        config.instance_slots = 16;
        (tokio, Runtime::new(config).unwrap())
    })
}

fuzz_target!(|data: &[u8]| {
    let (tokio, runtime) = setup();
    let module = ModuleSpec::from_bytes(data.to_vec())
        .memory(16 << 20)
        .timeout(Duration::from_millis(100));
    let _ = tokio.block_on(async {
        let app = runtime.load_spec(AppSpec::new().module("f", module)).await?;
        let _ = app.call("f", "run", &[]).await;
        Ok::<_, membrane::Error>(())
    });
});
