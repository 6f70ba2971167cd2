//! `p3_hello` built against WASI 0.3.2 (wasip3 0.10): a `wasi:http/handler@0.3.2` service where
//! every request gets 200, `content-type: text/plain` and the body `hello\n`. It checks that a
//! guest of a newer 0.3.x patch release links against a host that implements @0.3.0; the code
//! is the same as `p3_hello`'s, only the `wasip3` version differs.

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_bindgen, wit_future, wit_stream};

struct Hello;

impl wasip3::exports::http::handler::Guest for Hello {
    async fn handle(_request: Request) -> Result<Response, ErrorCode> {
        let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
            .map_err(|e| ErrorCode::InternalError(Some(format!("{e:?}"))))?;
        let (mut body, contents) = wit_stream::new();
        let (trailers_tx, trailers) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(headers, Some(contents), trailers);
        wit_bindgen::spawn_local(async move {
            body.write_all(b"hello\n".to_vec()).await;
            // Close the body, then resolve the trailers to "none" (the writer's default).
            drop(body);
            drop(trailers_tx);
        });
        Ok(response)
    }
}

wasip3::http::service::export!(Hello);
