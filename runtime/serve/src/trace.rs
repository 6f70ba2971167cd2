//! W3C trace context of a request: an incoming `traceparent` header is honoured (its trace
//! becomes the request's, its span the parent of the request's span); without one, the
//! request starts a trace. With telemetry on, the request's span is exported when the
//! response head is sent, as an HTTP server span of OpenTelemetry's conventions.

use membrane_core::telemetry::{self, Begun, SpanContext, SpanKind, Value};

/// The trace a request belongs to.
pub(crate) struct RequestTrace {
    /// The request's span.
    pub context: SpanContext,
    /// The caller's span, when the request carried a valid `traceparent`.
    pub parent: Option<SpanContext>,
    /// The span being recorded, with telemetry on.
    begun: Option<Begun>,
}

impl RequestTrace {
    /// The trace of a request with this `traceparent` header value (if any).
    pub(crate) fn from_header(value: Option<&str>) -> RequestTrace {
        let parent = value.and_then(SpanContext::from_traceparent);
        let begun = if telemetry::enabled() {
            telemetry::begin_under(parent)
        } else {
            None
        };
        let context = match (&begun, parent) {
            (Some(b), _) => b.context,
            (None, Some(p)) => p.child(),
            (None, None) => SpanContext::root(true),
        };
        RequestTrace {
            context,
            parent,
            begun,
        }
    }

    /// The context calls made for the request take as their parent: the request's span,
    /// with telemetry on.
    pub(crate) fn scope(&self) -> Option<SpanContext> {
        self.begun.map(|b| b.context)
    }

    /// Ends the request's span with its answer.
    pub(crate) fn end(
        self,
        method: &http::Method,
        path: &str,
        route: Option<(&str, &str)>,
        status: u16,
    ) {
        let Some(begun) = self.begun else {
            return;
        };
        let method: Value = match *method {
            http::Method::GET => "GET".into(),
            http::Method::POST => "POST".into(),
            http::Method::PUT => "PUT".into(),
            http::Method::DELETE => "DELETE".into(),
            http::Method::HEAD => "HEAD".into(),
            http::Method::PATCH => "PATCH".into(),
            http::Method::OPTIONS => "OPTIONS".into(),
            // Any other token: OpenTelemetry's conventions name it `_OTHER`.
            _ => "_OTHER".into(),
        };
        let name = match (method.as_str(), route) {
            (Some(m), Some((prefix, _))) => format!("{m} {prefix}"),
            (Some(m), None) => m.to_owned(),
            (None, _) => "HTTP".to_owned(),
        };
        let mut attributes = vec![
            ("http.request.method", method),
            (
                "url.path",
                crate::sanitize::escape(path).into_owned().into(),
            ),
            ("http.response.status_code", i64::from(status).into()),
        ];
        if let Some((prefix, module)) = route {
            attributes.push(("http.route", prefix.to_owned().into()));
            attributes.push(("membrane.module", module.to_owned().into()));
        }
        let error = (status >= 500).then(|| {
            attributes.push(("error.type", status.to_string().into()));
            status.to_string().into()
        });
        begun.end(SpanKind::Server, name.into(), attributes, error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honours_a_valid_traceparent() {
        let t = RequestTrace::from_header(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        assert_eq!(t.context.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(t.parent.map(|p| p.span_id), Some(0x00f067aa0ba902b7));
        assert_ne!(t.context.span_id, 0x00f067aa0ba902b7);
        assert!(
            t.context
                .traceparent()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );
    }

    #[test]
    fn starts_a_trace_otherwise() {
        for bad in [
            None,
            Some("garbage"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        ] {
            let t = RequestTrace::from_header(bad);
            assert_eq!(t.parent, None, "{bad:?}");
            assert_ne!(t.context.trace_id, 0);
        }
    }
}
