//! Which traces are recorded: OpenTelemetry's samplers, by the names of
//! `OTEL_TRACES_SAMPLER` (`parentbased_always_on` unless told otherwise).

/// A sampler of traces.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampler {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// This share of traces (0.0 to 1.0), chosen by trace id so that every host of a trace
    /// decides alike.
    Ratio(f64),
    /// A span with a parent follows the parent's decision; a new trace asks the inner one.
    ParentBased(Box<Sampler>),
}

impl Default for Sampler {
    fn default() -> Sampler {
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
    }
}

impl Sampler {
    /// The sampler named `name` (an `OTEL_TRACES_SAMPLER` value) with its argument (the
    /// ratio of `traceidratio` and `parentbased_traceidratio`, 1.0 when absent).
    pub fn from_name(name: &str, arg: Option<&str>) -> Result<Sampler, String> {
        let ratio = || -> Result<Sampler, String> {
            let r = match arg {
                None => 1.0,
                Some(a) => a
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        format!("the sampler's ratio `{a}` is not a number from 0 to 1")
                    })?,
            };
            Ok(Sampler::Ratio(r))
        };
        let parent = |s: Sampler| Sampler::ParentBased(Box::new(s));
        Ok(match name.trim() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => ratio()?,
            "parentbased_always_on" => parent(Sampler::AlwaysOn),
            "parentbased_always_off" => parent(Sampler::AlwaysOff),
            "parentbased_traceidratio" => parent(ratio()?),
            other => {
                return Err(format!(
                    "unknown sampler `{other}`; use always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
                ));
            }
        })
    }

    /// Whether a span of trace `trace_id` is recorded, given its parent's decision (`None`
    /// for the first span of a trace).
    pub fn sampled(&self, trace_id: u128, parent: Option<bool>) -> bool {
        match self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            // The lower 64 bits of the id as a fraction, as the other SDKs compare them.
            Sampler::Ratio(r) => (trace_id as u64 >> 1) < (r * (1u64 << 63) as f64) as u64,
            Sampler::ParentBased(root) => match parent {
                Some(p) => p,
                None => root.sampled(trace_id, None),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_decisions() {
        assert_eq!(Sampler::from_name("always_on", None), Ok(Sampler::AlwaysOn));
        assert!(
            Sampler::from_name("nope", None)
                .unwrap_err()
                .contains("nope")
        );
        assert!(Sampler::from_name("traceidratio", Some("2")).is_err());
        let half = Sampler::from_name("traceidratio", Some("0.5")).unwrap();
        let kept = (0..10_000u128)
            .filter(|i| {
                half.sampled(
                    i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
                    None,
                )
            })
            .count();
        assert!((4_000..6_000).contains(&kept), "{kept}");
        let pb = Sampler::default();
        assert!(!pb.sampled(1, Some(false)));
        assert!(pb.sampled(1, None));
        assert!(
            !Sampler::from_name("parentbased_always_off", None)
                .unwrap()
                .sampled(1, None)
        );
    }
}
