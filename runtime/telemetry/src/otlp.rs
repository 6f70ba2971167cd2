//! The OTLP side: exporters of each signal on the configured transport, and Membrane's
//! attribute values as OpenTelemetry's.

use std::borrow::Cow;

pub(crate) use membrane_core::spec::OtlpProtocol;
use membrane_core::telemetry::Value;

/// The URL of a signal under a manifest's base `endpoint`: OTLP/HTTP's path for it, gRPC's
/// base as it is.
pub(crate) fn signal_url(base: &str, protocol: OtlpProtocol, path: &str) -> String {
    match protocol {
        OtlpProtocol::HttpProtobuf => format!("{}/{path}", base.trim_end_matches('/')),
        OtlpProtocol::Grpc => base.to_owned(),
    }
}

/// Builds an exporter of one signal with the transport and endpoint of `s`.
macro_rules! exporter {
    ($builder:expr, $s:expr, $path:literal) => {{
        let s: &Settings = $s;
        match s.protocol {
            $crate::otlp::OtlpProtocol::HttpProtobuf => {
                let mut b = $builder.with_http().with_protocol(Protocol::HttpBinary);
                if let Some(e) = &s.endpoint {
                    b = b.with_endpoint($crate::otlp::signal_url(e, s.protocol, $path));
                }
                b.build()
            }
            $crate::otlp::OtlpProtocol::Grpc => {
                let mut b = $builder.with_tonic();
                if let Some(e) = &s.endpoint {
                    b = b.with_endpoint($crate::otlp::signal_url(e, s.protocol, $path));
                }
                b.build()
            }
        }
        .map_err(|e| StartError(format!("cannot set up OTLP export: {e}")))
    }};
}
pub(crate) use exporter;

/// An attribute's value for OpenTelemetry.
pub(crate) fn value(v: Value) -> opentelemetry::Value {
    match v {
        Value::Str(Cow::Borrowed(s)) => s.into(),
        Value::Str(Cow::Owned(s)) => s.into(),
        Value::Shared(s) => s.to_string().into(),
        Value::Int(n) => n.into(),
    }
}
