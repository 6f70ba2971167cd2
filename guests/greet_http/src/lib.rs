//! The HTTP front of the live-upgrade example and load tests: every request gets 200 and the
//! body `api.hello(<path without the leading '/' and the query>)`, so a load tool sees which
//! provider version answered.

wit_bindgen::generate!({ path: "../../wit/acme-greet", world: "http-front" });

use acme::greet::api;
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// The most bytes one `blocking-write-and-flush` takes.
const CHUNK: usize = 4096;

struct Greet;

impl Guest for Greet {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default();
        let text = api::hello(path.strip_prefix('/').unwrap_or(path));
        let headers = Fields::new();
        let _ = headers.append("content-type", b"text/plain; charset=utf-8");
        let response = OutgoingResponse::new(headers);
        let Ok(body) = response.body() else { return };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = body.write() {
            for chunk in text.as_bytes().chunks(CHUNK) {
                if stream.blocking_write_and_flush(chunk).is_err() {
                    break;
                }
            }
        }
        let _ = OutgoingBody::finish(body, None);
    }
}

wasip2::http::proxy::export!(Greet);
