//! Progress while an app loads: compiling many modules takes seconds (a cold 100-module app
//! about 16 s on two cores). On a terminal a progress bar, cleared when the load ends; when
//! stderr is not a terminal, a plain line every few seconds, and only if the load is slow,
//! so that quick (cached) loads print nothing.

use crate::membrane;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::membrane::{App, AppSpec, LoadProgress, Runtime};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::say;

/// How long a load runs before plain progress lines start, and how often they come.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

/// Loads `spec`, showing progress for apps of more than one module.
pub async fn load(runtime: &Runtime, spec: AppSpec) -> membrane::Result<App> {
    let total = spec.modules().len();
    if total < 2 {
        return runtime.load_spec(spec).await;
    }
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} compiling {bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        let report = |p: LoadProgress<'_>| {
            bar.set_position(p.done as u64);
            bar.set_message(p.module.to_string());
        };
        let app = runtime.load_spec_with_progress(spec, &report).await;
        bar.finish_and_clear();
        return app;
    }
    let start = Instant::now();
    let last = Mutex::new(start);
    let report = |p: LoadProgress<'_>| {
        let now = Instant::now();
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if now.duration_since(*last) >= PLAIN_EVERY
            || (p.done == p.total && now - start >= PLAIN_EVERY)
        {
            *last = now;
            say(&format!(
                "compiling: {}/{} modules ({:.0?})",
                p.done,
                p.total,
                now - start
            ));
        }
    };
    runtime.load_spec_with_progress(spec, &report).await
}
