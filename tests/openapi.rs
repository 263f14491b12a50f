//! A client of the admin API that checks every answer against `schemas/openapi.json`: a
//! documented path, method and status, a documented content type, and a JSON body valid
//! against its schema. An undocumented path or method must answer the JSON 404 or 405 of the
//! error schema. `tests/admin.rs` and the `api_*` tests (through `tests/api_client.rs`) both
//! call the API through it; `seen` collects the operations answered, for the check that every
//! documented operation is exercised.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hookline_outbound::{HttpClient, HttpOptions, NetworkGuard};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{json, Value};

/// The OpenAPI document of the repository.
pub fn document() -> Arc<Value> {
    let path = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("../schemas/openapi.json");
    Arc::new(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
}

/// Operations answered, as (METHOD, path template).
pub type Seen = Arc<Mutex<BTreeSet<(String, String)>>>;

/// One answer of the API.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error answer with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["error"]["code"], code, "{}", self.text);
    }
}

/// The checking client of one admin API.
pub struct OpenApi {
    base: String,
    http: HttpClient,
    doc: Arc<Value>,
    seen: Seen,
}

impl OpenApi {
    pub fn new(addr: SocketAddr, doc: Arc<Value>, seen: Seen) -> Self {
        Self {
            base: format!("http://{addr}"),
            http: HttpClient::new(
                NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
                HttpOptions {
                    max_response_bytes: 8 << 20,
                    total_timeout: Duration::from_secs(60),
                    ..HttpOptions::default()
                },
            ),
            doc,
            seen,
        }
    }

    /// Sends a request with a bearer `token` (if any), `extra` headers and a JSON `body`, and
    /// checks the answer against the document.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Answer {
        let mut headers = Vec::new();
        if let Some(t) = token {
            headers.push((
                HeaderName::from_static("authorization"),
                HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            ));
        }
        if body.is_some() {
            headers.push((
                HeaderName::from_static("content-type"),
                HeaderValue::from_static("application/json"),
            ));
        }
        for (k, v) in extra {
            headers.push((
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            ));
        }
        let resp = self
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &format!("{}{path}", self.base),
                headers,
                body.unwrap_or_default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        let content_type = resp
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = if content_type.starts_with("application/json") {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
        } else {
            Value::Null
        };
        self.conform(method, path, resp.status, &content_type, &body);
        Answer {
            status: resp.status,
            headers: resp.headers,
            body,
            text,
        }
    }

    /// The documented path template `path` matches.
    fn template(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap();
        let segs: Vec<&str> = path.split('/').collect();
        self.doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .find(|tmpl| {
                let t: Vec<&str> = tmpl.split('/').collect();
                t.len() == segs.len()
                    && t.iter()
                        .zip(&segs)
                        .all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
            })
            .cloned()
    }

    fn conform(&self, method: &str, path: &str, status: u16, content_type: &str, body: &Value) {
        let error = json!({"$ref": "#/components/schemas/Error"});
        let Some(tmpl) = self.template(path) else {
            // Undocumented paths must answer the JSON 404 of the error schema.
            assert_eq!(
                status, 404,
                "{method} {path} is not documented but answered {status}"
            );
            return self.validate(&error, body, method, path);
        };
        let op = &self.doc["paths"][&tmpl][method.to_ascii_lowercase()];
        if op.is_null() {
            assert_eq!(
                status, 405,
                "{method} {tmpl} is not documented but answered {status}"
            );
            return self.validate(&error, body, method, path);
        }
        self.seen
            .lock()
            .unwrap()
            .insert((method.to_ascii_uppercase(), tmpl.clone()));
        let responses = &op["responses"];
        let resp = if responses[status.to_string()].is_object() {
            &responses[status.to_string()]
        } else {
            &responses["default"]
        };
        assert!(
            resp.is_object(),
            "{method} {tmpl}: status {status} is not documented"
        );
        let Some(content) = resp.get("content") else {
            assert!(
                body.is_null(),
                "{method} {tmpl} {status}: documented without a body"
            );
            return;
        };
        assert!(
            content
                .as_object()
                .unwrap()
                .keys()
                .any(|k| content_type.starts_with(k.as_str())),
            "{method} {tmpl} {status}: content type {content_type:?} is not documented"
        );
        if let Some(schema) = content.get("application/json").map(|c| &c["schema"]) {
            if content_type.starts_with("application/json") {
                self.validate(schema, body, method, path);
            }
        }
    }

    fn validate(&self, schema: &Value, body: &Value, method: &str, path: &str) {
        // JSON Schema tools only look for embedded resources (the topic schemas keep their `$id`)
        // under schema keywords, so the components move under `$defs` for validation.
        let rewrite = |v: &Value| -> Value {
            let text = serde_json::to_string(v).unwrap();
            serde_json::from_str(&text.replace("#/components/schemas/", "#/$defs/")).unwrap()
        };
        let mut root = rewrite(schema);
        root["$defs"] = rewrite(&self.doc["components"]["schemas"]);
        let v = jsonschema::validator_for(&root).expect("the OpenAPI schemas compile");
        let errors: Vec<String> = v
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path}: answer does not match the OpenAPI document: {errors:?}\n{body:#}"
        );
    }
}
