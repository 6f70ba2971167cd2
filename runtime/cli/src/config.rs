//! What every command that loads an app shares: the runtime settings for the app, and the
//! signals that stop a server.

use crate::membrane::{self, AppSpec, Config};

/// The runtime settings for one app: the compiled-code cache (unless `MEMBRANE_NO_CACHE`
/// is set), `oci://` components pulled into the cache directory (even without the
/// compiled-code cache: they have to be kept somewhere), and as many instance slots as the
/// app's modules may use at once.
pub fn config_for(app: &AppSpec) -> Config {
    let mut config = Config::default();
    if std::env::var_os("MEMBRANE_NO_CACHE").is_none() {
        config.cache_dir = membrane::default_cache_dir();
    }
    config.fetcher = fetcher().map(|f| std::sync::Arc::new(f) as _);
    config.fuel = app.modules().values().any(|m| m.limits.fuel.is_some());
    // For benchmarks of what counting calls costs (scripts/bench-http.sh).
    config.metrics = std::env::var_os("MEMBRANE_NO_METRICS").is_none();
    if let Some(stack) = app.stack_size() {
        config.max_wasm_stack = stack as usize;
    }
    // Every instance of a module, resource sessions included, comes from its pool, so the
    // sum of `instances` is all the app can hold at once.
    // Twice that leaves room for live upgrades: one that raises `instances`, and the moment
    // a module's state moves, when its old and new instance are both alive.
    let wanted: usize = app.modules().values().map(|m| m.limits.instances).sum();
    config.instance_slots = (wanted * 2).clamp(16, 10_000) as u32;
    config
}

/// The fetcher of `oci://` components, keeping them under the cache directory; `None`
/// when there is no cache directory (no `$HOME`, no `$MEMBRANE_CACHE_DIR`).
pub fn fetcher() -> Option<membrane_oci::OciFetcher> {
    membrane::default_cache_dir().map(membrane_oci::OciFetcher::new)
}

/// Completes on the first SIGTERM or SIGINT.
pub fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
