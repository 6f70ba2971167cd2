//! `[app.telemetry]`: where an app's traces, metrics and logs are exported over OTLP.

/// How OTLP reaches the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub enum OtlpProtocol {
    /// Protobuf over HTTP (`http/protobuf`, port 4318), the default.
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// gRPC (`grpc`, port 4317).
    #[serde(rename = "grpc")]
    Grpc,
}

impl OtlpProtocol {
    /// The spelling of `OTEL_EXPORTER_OTLP_PROTOCOL` and the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            OtlpProtocol::Grpc => "grpc",
        }
    }

    /// The protocol named `name` (`http/protobuf` or `grpc`).
    pub fn parse(name: &str) -> Option<OtlpProtocol> {
        match name.trim() {
            "http/protobuf" => Some(OtlpProtocol::HttpProtobuf),
            "grpc" => Some(OtlpProtocol::Grpc),
            _ => None,
        }
    }
}

/// The app's OpenTelemetry export. The standard `OTEL_*` environment variables override
/// each key (and `OTEL_EXPORTER_OTLP_ENDPOINT` alone turns export on).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TelemetrySpec {
    /// The collector's base URL (`endpoint`): `http://host:4318` for `http/protobuf`
    /// (the signal's path, `/v1/traces`, is added), `http://host:4317` for `grpc`.
    pub endpoint: Option<String>,
    /// `protocol`.
    pub protocol: Option<OtlpProtocol>,
    /// `service_name`: the `service.name` of what is exported (default: `[app] name`, or
    /// `membrane`).
    pub service_name: Option<String>,
    /// `sampler`: an `OTEL_TRACES_SAMPLER` name (default `parentbased_always_on`).
    pub sampler: Option<String>,
    /// `sampler_arg`: the ratio of the `traceidratio` samplers.
    pub sampler_arg: Option<String>,
}
