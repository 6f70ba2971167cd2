//! `[app.telemetry]`: where the app's traces, metrics and logs are exported over OTLP
//! (the `OTEL_*` environment variables override each key when the export starts).

use serde::Deserialize;
use toml::Spanned;

use super::Lines;
use crate::spec::{OtlpProtocol, TelemetrySpec};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TelemetrySection {
    endpoint: Option<Spanned<String>>,
    protocol: Option<Spanned<String>>,
    service_name: Option<Spanned<String>>,
    sampler: Option<Spanned<String>>,
    sampler_arg: Option<Spanned<String>>,
}

/// `[app.telemetry]`; problems go to `lines`.
pub(super) fn telemetry_spec(t: TelemetrySection, lines: &mut Lines<'_>) -> TelemetrySpec {
    let mut spec = TelemetrySpec::default();
    let text = |key: &str, v: Option<Spanned<String>>, lines: &mut Lines<'_>| {
        v.map(|v| {
            lines.note(format!("app.telemetry.{key}"), &v.span());
            (v.span(), v.into_inner())
        })
    };
    if let Some((span, e)) = text("endpoint", t.endpoint, lines) {
        let host = e
            .strip_prefix("http://")
            .or_else(|| e.strip_prefix("https://"))
            .and_then(|rest| rest.split(['/', ':']).next())
            .filter(|h| !h.is_empty() && !e.contains(char::is_whitespace));
        match host {
            Some(_) => spec.endpoint = Some(e),
            None => lines.bad(
                "app.telemetry.endpoint".into(),
                &span,
                format!(
                    "`{e}` is not an http:// or https:// URL of a collector \
                     (e.g. \"http://127.0.0.1:4318\")"
                ),
            ),
        }
    }
    if let Some((span, p)) = text("protocol", t.protocol, lines) {
        match OtlpProtocol::parse(&p) {
            Some(p) => spec.protocol = Some(p),
            None => lines.bad(
                "app.telemetry.protocol".into(),
                &span,
                format!("unknown protocol `{p}`; use \"http/protobuf\" or \"grpc\""),
            ),
        }
    }
    spec.service_name = text("service_name", t.service_name, lines).map(|(_, s)| s);
    const SAMPLERS: [&str; 6] = [
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ];
    if let Some((span, name)) = text("sampler", t.sampler, lines) {
        if SAMPLERS.contains(&name.as_str()) {
            spec.sampler = Some(name);
        } else {
            lines.bad(
                "app.telemetry.sampler".into(),
                &span,
                format!(
                    "unknown sampler `{name}`; use one of {}",
                    SAMPLERS.join(", ")
                ),
            );
        }
    }
    if let Some((span, arg)) = text("sampler_arg", t.sampler_arg, lines) {
        if arg
            .trim()
            .parse::<f64>()
            .is_ok_and(|r| (0.0..=1.0).contains(&r))
        {
            spec.sampler_arg = Some(arg);
        } else {
            lines.bad(
                "app.telemetry.sampler_arg".into(),
                &span,
                format!("`{arg}` is not a ratio from 0 to 1 (e.g. \"0.1\")"),
            );
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::error::Result;
    use crate::manifest::Manifest;
    use crate::spec::{AppSpec, OtlpProtocol};

    fn parse(text: &str) -> Result<AppSpec> {
        Manifest::parse(text, Path::new("membrane.toml"), Path::new("/app")).map(|m| m.app)
    }

    #[test]
    fn telemetry_keys() {
        let app = parse(
            "[app.telemetry]\nendpoint = \"http://127.0.0.1:4318\"\nprotocol = \"grpc\"\n\
             service_name = \"shop\"\nsampler = \"traceidratio\"\nsampler_arg = \"0.5\"\n",
        )
        .unwrap();
        let t = app.telemetry.unwrap();
        assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:4318"));
        assert_eq!(t.protocol, Some(OtlpProtocol::Grpc));
        assert_eq!(t.service_name.as_deref(), Some("shop"));
        assert!(parse("").unwrap().telemetry.is_none());
        let e = parse(
            "[app.telemetry]\nendpoint = \"127.0.0.1:4318\"\nprotocol = \"udp\"\n\
             sampler = \"sometimes\"\nsampler_arg = \"2\"\n",
        )
        .unwrap_err();
        let keys: Vec<_> = std::iter::once(&e)
            .chain(e.problems())
            .filter_map(|p| p.key())
            .collect();
        assert!(keys.contains(&"app.telemetry.endpoint"), "{e:?}");
        assert!(keys.contains(&"app.telemetry.protocol"), "{e:?}");
        assert!(keys.contains(&"app.telemetry.sampler"), "{e:?}");
        assert!(keys.contains(&"app.telemetry.sampler_arg"), "{e:?}");
        let e = parse("[app.telemetry]\nendpiont = \"http://x\"\n").unwrap_err();
        assert!(e.to_string().contains("endpiont"), "{e}");
    }
}
