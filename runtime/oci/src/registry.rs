//! One conversation with a registry about one repository (the distribution API's
//! `/v2/<name>/...` endpoints): requests carry what the registry asked for last (a bearer
//! token, or basic credentials), and a `401` is answered once by authenticating
//! (`auth.rs`) and sending the request again.

use bytes::Bytes;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use membrane_core::spec::oci::OciRef;

use crate::auth::{self, Challenge};
use crate::error::OciErrorKind;
use crate::http::{Http, Response, Target};
use crate::settings::{Credentials, Settings};

/// The largest token answer read.
const MAX_TOKEN_ANSWER: u64 = 1 << 20;

/// Docker Hub's registry, which `docker.io` names.
const DOCKER_HUB: &str = "registry-1.docker.io";

/// What a session asks access for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading.
    Pull,
    /// Reading and writing.
    Push,
}

/// A session with a registry about one repository.
pub struct Session<'a> {
    http: &'a Http,
    base: Target,
    repository: String,
    scope: String,
    credentials: Option<Credentials>,
    authorization: Option<HeaderValue>,
}

impl<'a> Session<'a> {
    /// A session with the registry of `r` about its repository.
    pub fn new(
        http: &'a Http,
        settings: &Settings,
        r: &OciRef,
        access: Access,
    ) -> Result<Session<'a>, OciErrorKind> {
        let hub = matches!(r.host(), "docker.io" | "index.docker.io");
        let host = if hub { DOCKER_HUB } else { r.host() }.to_string();
        let https = !http.plain_allowed(&host, r.port().unwrap_or(80));
        let port = r.port().unwrap_or(if https { 443 } else { 80 });
        // Docker's config keys Docker Hub by its index.
        let creds_key = if hub { "index.docker.io" } else { r.registry() };
        let credentials = settings
            .credentials_for(creds_key)?
            .or(settings.credentials_for(r.registry())?)
            .cloned();
        let repository = if hub && !r.repository().contains('/') {
            format!("library/{}", r.repository())
        } else {
            r.repository().to_string()
        };
        let actions = match access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        Ok(Session {
            http,
            base: Target {
                https,
                host,
                port,
                path: "/v2/".into(),
            },
            scope: format!("repository:{repository}:{actions}"),
            repository,
            credentials,
            authorization: None,
        })
    }

    /// The target of `/v2/<repository>/<rest>`.
    pub fn target(&self, rest: &str) -> Target {
        self.base
            .with_path(format!("/v2/{}/{rest}", self.repository))
    }

    /// Sends a request to `target` (on the registry or where an upload's `Location` points),
    /// authenticating once if the registry asks.
    pub async fn request(
        &mut self,
        method: Method,
        target: &Target,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, OciErrorKind> {
        let mut authenticated = false;
        loop {
            let mut h = headers.clone();
            // What the registry granted goes to the registry only, not to wherever an
            // upload's Location points.
            if let Some(a) = &self.authorization
                && target.same_origin(&self.base)
            {
                h.insert(AUTHORIZATION, a.clone());
            }
            let response = self
                .http
                .send(method.clone(), target, &h, body.clone())
                .await?;
            match response.status {
                StatusCode::UNAUTHORIZED if !authenticated => {
                    let challenge = response
                        .headers
                        .get_all(WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .find_map(auth::parse);
                    drop(response);
                    self.authenticate(challenge).await?;
                    authenticated = true;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(OciErrorKind::Unauthorized {
                        status: response.status.as_u16(),
                    });
                }
                _ => return Ok(response),
            }
        }
    }

    async fn authenticate(&mut self, challenge: Option<Challenge>) -> Result<(), OciErrorKind> {
        let unauthorized = OciErrorKind::Unauthorized { status: 401 };
        match challenge {
            None => Err(unauthorized),
            Some(Challenge::Basic) => {
                let Some(c) = &self.credentials else {
                    return Err(unauthorized);
                };
                // Basic credentials go only where TLS protects them, or to hosts the user
                // allowed plain HTTP to (send() checks the scheme of every target).
                self.authorization = Some(header(&c.basic())?);
                Ok(())
            }
            Some(Challenge::Bearer(params)) => {
                let realm = params.get("realm").ok_or(OciErrorKind::Protocol {
                    detail: "the registry asked for a bearer token without saying where to get one (no realm)".into(),
                })?;
                let mut realm = self.base.join(realm)?;
                let mut query = Vec::new();
                if let Some(service) = params.get("service") {
                    query.push(format!("service={}", auth::percent_encode(service)));
                }
                let scope = params.get("scope").unwrap_or(&self.scope).clone();
                query.push(format!("scope={}", auth::percent_encode(&scope)));
                let sep = if realm.path.contains('?') { '&' } else { '?' };
                realm.path = format!("{}{sep}{}", realm.path, query.join("&"));
                let mut h = HeaderMap::new();
                if let Some(c) = &self.credentials {
                    h.insert(AUTHORIZATION, header(&c.basic())?);
                }
                let response = self
                    .http
                    .send(Method::GET, &realm, &h, Bytes::new())
                    .await?;
                match response.status {
                    StatusCode::OK => {}
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                        return Err(OciErrorKind::Unauthorized {
                            status: response.status.as_u16(),
                        });
                    }
                    status => {
                        return Err(OciErrorKind::Protocol {
                            detail: format!(
                                "the token service {} answered {status}",
                                realm.authority()
                            ),
                        });
                    }
                }
                let (body, _) = crate::http::read_limited(response, MAX_TOKEN_ANSWER)
                    .await
                    .map_err(|e| {
                        e.unwrap_or(OciErrorKind::Protocol {
                            detail: "the token service's answer is over 1 MiB".into(),
                        })
                    })?;
                let token = auth::token_of(&body).ok_or(OciErrorKind::Protocol {
                    detail: "the token service's answer holds no token".into(),
                })?;
                self.authorization = Some(header(&format!("Bearer {token}"))?);
                Ok(())
            }
        }
    }
}

fn header(value: &str) -> Result<HeaderValue, OciErrorKind> {
    let mut v = HeaderValue::from_str(value).map_err(|_| OciErrorKind::Protocol {
        detail: "a token or credential holds characters a header cannot carry".into(),
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// The error of an answer that is not the expected one: `NotFound` for 404, else the
/// status with an excerpt of what the registry said.
pub async fn unexpected(
    response: Response,
    object: crate::error::Object,
    name: &str,
) -> OciErrorKind {
    if response.status == StatusCode::NOT_FOUND {
        return OciErrorKind::NotFound {
            object,
            name: name.to_string(),
        };
    }
    let status = response.status;
    let url = response.from.url();
    let excerpt = crate::http::error_excerpt(response).await;
    OciErrorKind::Protocol {
        detail: format!("{url} answered {status}: {excerpt}"),
    }
}
