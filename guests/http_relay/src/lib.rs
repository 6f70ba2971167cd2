//! The linked `membrane serve` benchmark: each request calls `driver.loop-inc(1)` through a
//! link, which calls `api.inc` through a second link, then answers exactly like
//! `http_hello` (200, `hello\n`). Comparing the two isolates the cost of two link hops.

wit_bindgen::generate!({
    path: ["../../wit/bench", "../../wit/bench-http"],
    world: "membrane-bench:http/relay",
    generate_all,
});

use membrane_bench::calls::driver;
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Relay;

impl Guest for Relay {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let n = driver::loop_inc(1);
        let headers = Fields::new();
        let _ = headers.append("content-type", b"text/plain");
        let response = OutgoingResponse::new(headers);
        if n != 1 {
            response.set_status_code(500).ok();
        }
        let Ok(body) = response.body() else { return };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = body.write() {
            let _ = stream.blocking_write_and_flush(b"hello\n");
        }
        let _ = OutgoingBody::finish(body, None);
    }
}

wasip2::http::proxy::export!(Relay);
