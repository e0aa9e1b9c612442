//! Routing by path template and method, over the endpoint list.
//!
//! An unknown path answers 404; a known path with a method it does not serve answers 405
//! with `Allow`; `OPTIONS` answers 204 with `Allow`; `HEAD` is served by the `GET` endpoint
//! (the server sends no body).

use http::Method;
use percent_encoding::percent_decode_str;

use super::endpoint::Endpoint;

/// The path parameters of a routed request, percent-decoded; a request extension.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathParams(Vec<(String, String)>);

impl PathParams {
    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The outcome of routing a request.
pub enum Routed<'a> {
    /// An endpoint serves this method on this path.
    Endpoint {
        /// The endpoint.
        endpoint: &'a Endpoint,
        /// Its path parameters.
        params: PathParams,
    },
    /// `OPTIONS` on a known path.
    Options {
        /// The path's template.
        template: &'static str,
        /// Methods the path accepts.
        allow: Vec<&'static str>,
    },
    /// A known path, but not with this method.
    MethodNotAllowed {
        /// The path's template.
        template: &'static str,
        /// Methods the path accepts.
        allow: Vec<&'static str>,
    },
    /// No route has this path.
    NotFound,
}

/// Why a route table is invalid.
#[derive(Debug, thiserror::Error)]
#[error("invalid route table: {0}")]
pub struct RouterError(String);

impl RouterError {
    pub(crate) fn new(message: String) -> Self {
        Self(message)
    }
}

/// The route table: every endpoint, indexed by path template.
pub struct Router {
    endpoints: Vec<Endpoint>,
    paths: matchit::Router<PathEntry>,
}

struct PathEntry {
    template: &'static str,
    /// `(method, index into endpoints)`.
    methods: Vec<(Method, usize)>,
}

impl PathEntry {
    fn allow(&self) -> Vec<&'static str> {
        let mut allow: Vec<&'static str> = self
            .methods
            .iter()
            .map(|(method, _)| crate::http::method_label(method))
            .collect();
        if self.methods.iter().any(|(method, _)| method == Method::GET) {
            allow.push("HEAD");
        }
        allow.push("OPTIONS");
        allow
    }
}

impl Router {
    /// Indexes `endpoints`; fails on two endpoints with one method and path, or on paths the
    /// router cannot tell apart.
    pub fn new(endpoints: Vec<Endpoint>) -> Result<Self, RouterError> {
        let mut entries: Vec<PathEntry> = Vec::new();
        for (index, endpoint) in endpoints.iter().enumerate() {
            let reads = matches!(*endpoint.method(), Method::GET | Method::HEAD);
            if !reads && endpoint.access() != super::Access::Public && endpoint.audit().is_none() {
                return Err(RouterError(format!(
                    "`{} {}` changes state but declares no audit entry",
                    endpoint.method(),
                    endpoint.path()
                )));
            }
            let method = endpoint.method().clone();
            match entries
                .iter_mut()
                .find(|entry| entry.template == endpoint.path())
            {
                Some(entry) if entry.methods.iter().any(|(known, _)| *known == method) => {
                    return Err(RouterError(format!(
                        "`{method} {}` is declared twice",
                        endpoint.path()
                    )));
                }
                Some(entry) => entry.methods.push((method, index)),
                None => entries.push(PathEntry {
                    template: endpoint.path(),
                    methods: vec![(method, index)],
                }),
            }
        }
        let mut paths = matchit::Router::new();
        for entry in entries {
            let template = entry.template;
            paths
                .insert(template, entry)
                .map_err(|error| RouterError(format!("`{template}`: {error}")))?;
        }
        Ok(Self { endpoints, paths })
    }

    /// Every endpoint, in declaration order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Routes a request.
    pub fn route(&self, method: &Method, path: &str) -> Routed<'_> {
        let Ok(matched) = self.paths.at(path) else {
            return Routed::NotFound;
        };
        let entry = matched.value;
        let wanted = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let found = entry.methods.iter().find(|(known, _)| known == wanted);
        if let Some((_, index)) = found {
            let params = matched
                .params
                .iter()
                .map(|(key, value)| {
                    (
                        key.to_owned(),
                        percent_decode_str(value).decode_utf8_lossy().into_owned(),
                    )
                })
                .collect();
            return Routed::Endpoint {
                endpoint: &self.endpoints[*index],
                params: PathParams(params),
            };
        }
        let allow = entry.allow();
        if method == Method::OPTIONS {
            Routed::Options {
                template: entry.template,
                allow,
            }
        } else {
            Routed::MethodNotAllowed {
                template: entry.template,
                allow,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::Filter;

    fn endpoint(method: &Method, path: &'static str) -> Endpoint {
        let builder = if method == Method::GET {
            Endpoint::get(path, "test")
        } else {
            Endpoint::post(path, "test")
        };
        builder.handle(warp::any().map(|| "ok"))
    }

    #[test]
    fn requests_route_by_template_then_method() {
        let router = Router::new(vec![
            endpoint(&Method::GET, "/api/files/{org_id}/{id}"),
            endpoint(&Method::POST, "/api/files/{org_id}/{id}"),
            endpoint(&Method::GET, "/docs/{*asset}"),
        ])
        .unwrap();

        let Routed::Endpoint { endpoint, params } =
            router.route(&Method::GET, "/api/files/o%201/f")
        else {
            panic!("expected a match");
        };
        assert_eq!(endpoint.path(), "/api/files/{org_id}/{id}");
        assert_eq!(params.get("org_id"), Some("o 1"));
        assert_eq!(params.get("id"), Some("f"));

        assert!(matches!(
            router.route(&Method::HEAD, "/api/files/a/b"),
            Routed::Endpoint { .. }
        ));
        assert!(matches!(
            router.route(&Method::GET, "/docs/css/x.css"),
            Routed::Endpoint { params, .. } if params.get("asset") == Some("css/x.css")
        ));
        match router.route(&Method::DELETE, "/api/files/a/b") {
            Routed::MethodNotAllowed { template, allow } => {
                assert_eq!(template, "/api/files/{org_id}/{id}");
                assert_eq!(allow, ["GET", "POST", "HEAD", "OPTIONS"]);
            }
            _ => panic!("expected 405"),
        }
        assert!(matches!(
            router.route(&Method::OPTIONS, "/api/files/a/b"),
            Routed::Options { .. }
        ));
        assert!(matches!(
            router.route(&Method::GET, "/api/files/a"),
            Routed::NotFound
        ));
        assert!(matches!(
            router.route(&Method::GET, "/api/files/a/b/"),
            Routed::NotFound
        ));
    }

    #[test]
    fn a_state_changing_route_without_an_audit_entry_is_refused() {
        let unaudited = Endpoint::post("/a", "a")
            .authenticated(crate::auth::RateClass::Write)
            .handle(warp::any().map(|| "ok"));
        let error = Router::new(vec![unaudited]).err().unwrap();
        assert!(error.to_string().contains("no audit entry"), "{error}");
    }

    #[test]
    fn a_route_declared_twice_is_refused() {
        let error = Router::new(vec![
            endpoint(&Method::GET, "/a"),
            endpoint(&Method::GET, "/a"),
        ])
        .err()
        .unwrap();
        assert!(error.to_string().contains("declared twice"), "{error}");
    }
}
