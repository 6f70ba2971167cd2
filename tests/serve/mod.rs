//! `membrane serve`: a real server on 127.0.0.1, real HTTP clients, real guests.

pub mod browser;
pub mod cli;
mod headers;
pub mod limits;
mod observe;
mod otel;
mod otlp;
mod outbound;
mod page;
mod routes;
mod tls;

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use membrane::serve::{ServeOptions, Server};
use membrane::{App, AppSpec, HttpSpec, ModuleSpec};
use tokio::net::TcpStream;

pub use crate::common::eventually;
use crate::common::{guests, runtime};

/// A served app: its addresses, and the server's task (stopped when dropped).
pub struct Served {
    pub app: App,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    /// The admin listener's token (made up at bind).
    pub token: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<membrane::Result<usize>>>,
}

impl Served {
    /// Asks the server to stop and waits for it; returns the connections it aborted.
    pub async fn stop(mut self) -> usize {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Loads `spec` (with `http` as its [app.http]) and serves it on free ports.
pub async fn serve(spec: AppSpec, http: HttpSpec) -> Served {
    let app = runtime()
        .load_spec(spec.http(http))
        .await
        .expect("app loads");
    serve_app(app).await
}

pub async fn serve_app(app: App) -> Served {
    let options = ServeOptions::new()
        .listen("127.0.0.1:0")
        .admin("127.0.0.1:0");
    let server = Server::bind(&app, options).await.expect("binds");
    let addr = server.local_addr().unwrap();
    let admin = server.admin_addr();
    let token = server.admin_token().map(str::to_owned);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    Served {
        app,
        addr,
        admin,
        token,
        stop: Some(tx),
        task: Some(task),
    }
}

/// The probe guest as module `name`, answering unknown paths with `name`.
pub fn probe(name: &str) -> ModuleSpec {
    ModuleSpec::from_file(guests::HTTP_PROBE).env("NAME", name)
}

/// One app of one probe module `m` routed at `/`.
pub async fn one(m: ModuleSpec) -> Served {
    serve(
        AppSpec::new().module("m", m),
        HttpSpec::default().route("/", "m"),
    )
    .await
}

/// A response: status, headers, body.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// Sends one HTTP/1.1 request on a new connection; a request without `Host` gets the
/// address, as a client sends it.
pub async fn send(addr: SocketAddr, mut req: http::Request<Full<Bytes>>) -> Result<Reply, String> {
    if !req.headers().contains_key(http::header::HOST) {
        req.headers_mut()
            .insert(http::header::HOST, addr.to_string().parse().unwrap());
    }
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

pub fn request(method: &str, path: &str, body: impl Into<Bytes>) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(body.into()))
        .unwrap()
}

/// A request with `Host: test.local`, for clients that do not add one.
pub fn with_host(mut req: http::Request<Full<Bytes>>) -> http::Request<Full<Bytes>> {
    req.headers_mut().insert(
        http::header::HOST,
        http::HeaderValue::from_static("test.local"),
    );
    req
}

/// A request that carries the admin token.
pub fn with_token(mut req: http::Request<Full<Bytes>>, token: &str) -> http::Request<Full<Bytes>> {
    req.headers_mut().insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    req
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, request("GET", path, Bytes::new()))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The value of one sample of the metrics text (`name{labels}` exactly as rendered).
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == series).then(|| v.parse().ok())?
    })
}
