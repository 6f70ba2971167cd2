//! The metric types [`super`] uses, for a build without the `metrics` feature: counters and
//! gauges keep nothing and nothing can be rendered (there is no `App::metrics_text`), and the
//! build holds no prometheus-client. Same names and methods as
//! prometheus-client's, so `metrics.rs` reads the same in both builds.

use std::marker::PhantomData;

/// A counter that counts nothing.
#[derive(Clone, Debug, Default)]
pub struct Counter;

impl Counter {
    /// Does nothing.
    pub fn inc(&self) {}
}

/// A gauge that holds nothing.
#[derive(Clone, Debug, Default)]
pub struct Gauge;

impl Gauge {
    /// Does nothing.
    pub fn set(&self, _: i64) {}
}

/// A family that makes a fresh metric for every label set.
#[derive(Debug)]
pub struct Family<L, M>(PhantomData<fn(L) -> M>);

impl<L, M> Default for Family<L, M> {
    fn default() -> Self {
        Family(PhantomData)
    }
}

impl<L, M> Clone for Family<L, M> {
    fn clone(&self) -> Self {
        Family(PhantomData)
    }
}

impl<L, M: Default> Family<L, M> {
    /// A metric for `labels`, unconnected to any other.
    pub fn get_or_create(&self, _: &L) -> M {
        M::default()
    }

    /// Same as [`Family::get_or_create`].
    pub fn get_or_create_owned(&self, _: &L) -> M {
        M::default()
    }
}

/// Units of the registry's metrics.
pub enum Unit {
    /// Seconds.
    Seconds,
    /// Bytes.
    Bytes,
}

/// A registry that keeps nothing.
pub struct Registry;

impl Registry {
    /// A registry for metrics named `prefix_...`.
    pub fn with_prefix(_: &str) -> Registry {
        Registry
    }

    /// Drops `metric`.
    pub fn register<M>(&mut self, _: &str, _: &str, _: M) {}

    /// Drops `metric`.
    pub fn register_with_unit<M>(&mut self, _: &str, _: &str, _: Unit, _: M) {}
}
