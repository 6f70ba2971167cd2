//! A fake host of one remote module: a raw NATS client subscribed on the module's subject
//! (anyone who may subscribe there can answer its calls) that answers each request with
//! the headers and body a test chooses.

use std::time::Duration;

use async_nats::{HeaderMap, Message};
use futures_util::StreamExt;
use futures_util::stream::{BoxStream, select};

use super::sessions::settled;

/// A bound on waits for what surely comes: only a broken test waits this long.
const GUARD: Duration = Duration::from_secs(30);

/// The header that marks an answer as an error.
pub const ERR: (&str, &str) = ("Membrane-Error", "1");
/// The host id the fake answers with (its session subject ends with it).
pub const HOST: (&str, &str) = ("Membrane-Host", "fake");

/// A fake host of `module`: it takes the module's calls (in its queue group) and the
/// session calls of host `fake`, and answers each as the test says.
pub struct Fake {
    client: async_nats::Client,
    requests: BoxStream<'static, Message>,
}

impl Fake {
    /// Subscribes on `module`'s subjects of app `name`; returns once the server has the
    /// subscriptions.
    pub async fn start(url: &str, name: &str, module: &str) -> Fake {
        let client = async_nats::connect(url).await.unwrap();
        let queue = format!("membrane.{name}.{module}");
        let shared = client
            .queue_subscribe(queue.clone(), queue.clone())
            .await
            .unwrap();
        let own = client
            .subscribe(format!("{queue}.host.fake"))
            .await
            .unwrap();
        settled(&client).await;
        Fake {
            client,
            requests: select(shared, own).boxed(),
        }
    }

    /// Leaves: when this returns the server has dropped the fake's subscriptions (the
    /// unsubscriptions go out ahead of the flush's ping), so no later call is routed to it.
    pub async fn leave(self) {
        let Fake { client, requests } = self;
        drop(requests);
        client.flush().await.unwrap();
    }

    /// The next request that waits for an answer (ends of sessions do not).
    pub async fn next(&mut self) -> Message {
        loop {
            let msg = tokio::time::timeout(GUARD, self.requests.next())
                .await
                .expect("a request comes")
                .expect("the subscriptions live");
            if msg.reply.is_some() {
                return msg;
            }
        }
    }

    /// Answers the next request with `headers` and `body`; returns the request.
    pub async fn answer(&mut self, headers: &[(&str, &str)], body: Vec<u8>) -> Message {
        let req = self.next().await;
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, *v);
        }
        self.client
            .publish_with_headers(req.reply.clone().unwrap(), h, body.into())
            .await
            .unwrap();
        // Out before the caller can give up: a large answer takes a while to write.
        self.client.flush().await.unwrap();
        req
    }
}

/// An error message as a host sends it, of `kind`, about `module`, with `causes` empty
/// causes.
pub fn error_of(module: &str, kind: &str, message: &str, causes: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "kind": kind,
        "message": message,
        "module": module,
        "export": null,
        "key": null,
        "upstream": false,
        "exit": null,
        "causes": vec![""; causes],
    }))
    .unwrap()
}

/// `text` as a `string` result in the component model's value encoding: its length as
/// unsigned LEB128, then its bytes.
pub fn string_result(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 5);
    let mut n = text.len() as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(text);
    out
}
