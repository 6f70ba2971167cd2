//! The native floor of `membrane serve` (issue 30): the same HTTP stack (hyper 1 through
//! hyper-util's auto builder, HTTP/1.1 and HTTP/2, on a multi-threaded tokio runtime) with
//! no sandbox, answering what the benchmark's guest (`guests/http_hello`) answers: 200,
//! `content-type: text/plain`, the body `hello\n`. `scripts/bench-native.sh` serves it and
//! `membrane serve` of the guest side by side under the same load.
//!
//! ```sh
//! cargo bench -p membrane --bench native_http --no-run
//! target/release/deps/native_http-* 127.0.0.1:18090
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".into());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
    eprintln!("native: serving on {addr}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(|_req| async {
                let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"hello\n")));
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain"),
                );
                Ok::<_, Infallible>(resp)
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
