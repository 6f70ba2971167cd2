//! `limits.timeout`: the wall-clock budget of one call (default 10 s), waiting for an
//! instance included. Wasm code is interrupted by the epoch deadline, armed before every
//! call from the module's timeout or the caller's remaining time, whichever is shorter; the
//! engine's epoch clock ticks every `Config::epoch_tick` (5 ms).

use std::any::Any;
use std::time::Duration;

use super::blocking::DeadlineInHostCall;
use crate::error::{Error, ErrorKind, Problems};
use crate::unit::{BlameCx, CallCx, Controls, ModuleCx, Slots, Unit, UnitDef};

pub const DEF: UnitDef = UnitDef { validate, prepare };

fn validate(cx: &ModuleCx<'_>, problems: &mut Problems) {
    if cx.spec.limits.timeout.is_zero() {
        problems.push(
            Error::manifest(format!(
                "module `{}`: limits.timeout must be longer than zero",
                cx.name
            ))
            .with_key(cx.key("limits.timeout")),
        );
    }
}

fn prepare(cx: &ModuleCx<'_>, _: &mut Problems) -> Option<Box<dyn Unit>> {
    let timeout = cx.spec.limits.timeout;
    Some(Box::new(Time {
        timeout,
        tick: cx.epoch_tick,
        ticks: deadline_ticks(timeout, cx.epoch_tick),
    }))
}

#[derive(Debug)]
struct Time {
    timeout: Duration,
    tick: Duration,
    /// The epoch ticks of `timeout`, computed once (most calls get the whole timeout).
    ticks: u64,
}

impl Unit for Time {
    fn instance(&self, store: &mut dyn Controls) -> crate::Result<()> {
        // Start-up code runs under the same budget as a call.
        let ticks = self.ticks;
        store.set_epoch_deadline(store.yields().map_or(ticks, |y| y.min(ticks)));
        Ok(())
    }

    fn arms(&self) -> bool {
        true
    }

    fn arm(&self, store: &mut dyn Controls, call: &CallCx) -> crate::Result<()> {
        // On a fiber the guest yields at every few ticks and the deadline is checked then.
        let ticks = if call.budget == self.timeout {
            self.ticks
        } else {
            deadline_ticks(call.budget, self.tick)
        };
        store.set_epoch_deadline(store.yields().map_or(ticks, |y| y.min(ticks)));
        Ok(())
    }

    fn blame(&self, _: &Slots, cx: &BlameCx<'_>) -> Option<(ErrorKind, String)> {
        let interrupted = cx.trap == Some(wasmtime::Trap::Interrupt)
            || cx.err.downcast_ref::<DeadlineInHostCall>().is_some();
        interrupted.then(|| {
            let module = cx.module;
            (
                ErrorKind::Timeout,
                format!(
                    "module `{module}`: {} ran past its deadline (timeout {}); raise [modules.{module}.limits] timeout if it needs longer",
                    cx.what,
                    humantime::format_duration(Duration::from_millis(
                        self.timeout.as_millis() as u64
                    ))
                ),
            )
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Turns a timeout into an epoch deadline, rounding up so that a call gets at least its budget.
pub fn deadline_ticks(timeout: Duration, tick: Duration) -> u64 {
    // In 64 bits when both fit (585 years): a 128-bit division is a library call, and
    // linked calls take this path on every call.
    let ticks = match (
        u64::try_from(timeout.as_nanos()),
        u64::try_from(tick.as_nanos()),
    ) {
        (Ok(t), Ok(k)) => u128::from(t.div_ceil(k.max(1))),
        _ => timeout.as_nanos().div_ceil(tick.as_nanos().max(1)),
    };
    // One extra tick: the current epoch period may be nearly over when the call starts.
    u64::try_from(ticks)
        .unwrap_or(u64::MAX)
        .saturating_add(1)
        .min(u64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up() {
        let tick = Duration::from_millis(10);
        assert_eq!(deadline_ticks(Duration::from_millis(500), tick), 51);
        assert_eq!(deadline_ticks(Duration::from_millis(1), tick), 2);
        // Past 64 bits of nanoseconds: the wide path, capped.
        assert_eq!(deadline_ticks(Duration::MAX, tick), u64::MAX / 2);
        assert_eq!(
            deadline_ticks(Duration::from_secs(600), Duration::from_nanos(1)),
            600_000_000_001
        );
    }
}
