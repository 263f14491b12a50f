//! What the `api_*` tests share (included with `mod api_client;`): an admin API on the real
//! local broker, account tokens, and a client that checks every answer against
//! `schemas/openapi.json` (a documented status, and a JSON body valid against its schema).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hookline_admin::auth;
use hookline_integration_tests::{key_path, start_admin};
use hookline_model::{AccountId, TokenRole};
use hookline_outbound::{HttpClient, HttpOptions, NetworkGuard};
use hookline_testkit::{Broker, TestTopics};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// A broker, the test's topics and one admin API instance over them.
pub struct Admin {
    pub broker: Broker,
    pub topics: TestTopics,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
}

impl Admin {
    /// Starts the broker and an admin API that accepts http:// URLs on loopback; `extra`
    /// flags are appended.
    pub async fn start(name: &str, extra: &[&str]) -> Self {
        let broker = Broker::start();
        let topics = TestTopics::create(&broker.bootstrap, 2).await;
        let shutdown = CancellationToken::new();
        let mut flags = vec![
            "--require-https",
            "false",
            "--allow-networks",
            "127.0.0.0/8",
        ];
        flags.extend_from_slice(extra);
        let addr = start_admin(&topics, &key_path(name), &flags, None, &shutdown).await;
        Self {
            broker,
            topics,
            addr,
            shutdown,
        }
    }

    /// Another instance over the same topics (for tests across instances).
    pub async fn another(&self, name: &str, extra: &[&str]) -> SocketAddr {
        let mut flags = vec![
            "--require-https",
            "false",
            "--allow-networks",
            "127.0.0.0/8",
        ];
        flags.extend_from_slice(extra);
        start_admin(&self.topics, &key_path(name), &flags, None, &self.shutdown).await
    }

    /// A new account token for `account`.
    pub async fn token(&self, account: &str) -> String {
        let new = auth::generate(
            TokenRole::Account,
            Some(AccountId::new(account).unwrap()),
            Some("test".into()),
        );
        hookline_admin::tables::write_token(
            &self.topics.settings,
            &self.topics.topics,
            &new.record,
        )
        .await
        .unwrap();
        // Wait until the admin API has read it from the topic.
        let api = self.client(&new.token);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while api.call("GET", "/v1/domains", None).await.status == 401 {
            assert!(
                std::time::Instant::now() < deadline,
                "the admin API never read the new token"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        new.token
    }

    pub fn client(&self, token: &str) -> Api {
        Api::new(self.addr, token)
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

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

/// A client of one account that checks every answer against the OpenAPI document.
pub struct Api {
    pub base: String,
    token: String,
    http: HttpClient,
    doc: Arc<Value>,
}

/// The OpenAPI document of the repository.
pub fn openapi() -> Arc<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/openapi.json");
    Arc::new(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
}

impl Api {
    pub fn new(addr: SocketAddr, token: &str) -> Self {
        Self {
            base: format!("http://{addr}"),
            token: token.to_owned(),
            http: HttpClient::new(
                NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
                HttpOptions {
                    max_response_bytes: 8 << 20,
                    total_timeout: Duration::from_secs(60),
                    ..HttpOptions::default()
                },
            ),
            doc: openapi(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.call_with(method, path, &[], body).await
    }

    /// A call with extra request headers (`If-Match`, `Idempotency-Key`).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut headers = vec![(
            HeaderName::from_static("authorization"),
            HeaderValue::from_str(&format!("Bearer {}", self.token)).unwrap(),
        )];
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
        let raw = body
            .map(|b| Bytes::from(serde_json::to_vec(&b).unwrap()))
            .unwrap_or_default();
        let resp = self
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &format!("{}{path}", self.base),
                headers,
                raw,
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
        let tmpl = self
            .template(path)
            .unwrap_or_else(|| panic!("{method} {path} is not documented"));
        let op = &self.doc["paths"][&tmpl][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {tmpl} is not documented");
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
        // Validators look for embedded resources only under schema keywords, so the
        // components move under `$defs`.
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

/// A minimal subscription body for database `database`, to a URL on a loopback port nobody
/// needs to answer (creation does not call it).
pub fn new_subscription(database: &str, path: &str) -> Value {
    json!({"database": database, "events": ["click"], "url": format!("http://127.0.0.1:9999/{path}"),
           "format": "json"})
}
