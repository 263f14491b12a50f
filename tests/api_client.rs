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
use hookline_testkit::{Broker, TestTopics};
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

pub use hookline_integration_tests::openapi::Answer;
use hookline_integration_tests::openapi::OpenApi;

/// A client of one account that checks every answer against the OpenAPI document
/// (`hookline_integration_tests::openapi`).
pub struct Api {
    token: String,
    client: OpenApi,
}

/// The OpenAPI document of the repository.
pub fn openapi() -> Arc<Value> {
    hookline_integration_tests::openapi::document()
}

impl Api {
    pub fn new(addr: SocketAddr, token: &str) -> Self {
        Self {
            token: token.to_owned(),
            client: OpenApi::new(addr, openapi(), Default::default()),
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
        let raw = body.map(|b| Bytes::from(serde_json::to_vec(&b).unwrap()));
        self.client
            .request(method, path, Some(&self.token), extra, raw)
            .await
    }
}

/// A minimal subscription body for database `database`, to a URL on a loopback port nobody
/// needs to answer (creation does not call it).
pub fn new_subscription(database: &str, path: &str) -> Value {
    json!({"database": database, "events": ["click"], "url": format!("http://127.0.0.1:9999/{path}"),
           "format": "json"})
}
