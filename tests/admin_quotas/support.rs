//! What both tests of `admin_quotas.rs` share: a client of the admin API that keeps status,
//! `Retry-After` and body, tokens and subscriptions written to Kafka, and dead letters.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookline_model::{AccountId, TokenRole};
use hookline_outbound::{HttpClient, HttpOptions, NetworkGuard};
use hookline_testkit::{Receiver, TestTopics};
use http::{HeaderName, HeaderValue, Method};
use serde_json::{json, Value};

/// One answer of the admin API.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct Api {
    base: String,
    http: HttpClient,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            http: HttpClient::new(
                NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
                HttpOptions {
                    max_response_bytes: 4 << 20,
                    total_timeout: Duration::from_secs(200),
                    ..HttpOptions::default()
                },
            ),
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut headers = vec![(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static("application/json"),
        )];
        if let Some(t) = token {
            headers.push((
                HeaderName::from_static("authorization"),
                HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            ));
        }
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(serde_json::to_vec(&b).unwrap()));
        let r = self
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &format!("{}{path}", self.base),
                headers,
                body,
            )
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Answer {
            status: r.status,
            retry_after: r
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
            body: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        }
    }
}

pub async fn token(t: &TestTopics, account: &str) -> String {
    let new = hookline_admin::auth::generate(
        TokenRole::Account,
        Some(AccountId::new(account).unwrap()),
        Some("quotas".into()),
    );
    hookline_admin::tables::write_token(&t.settings, &t.topics, &new.record)
        .await
        .unwrap();
    new.token
}

pub fn subscription(id: &str, account: &str, url: &str, status: &str) -> (String, Value) {
    (
        id.to_owned(),
        json!({"id": id, "account": account, "database": "12", "events": ["click"], "url": url,
               "format": "json", "status": status, "conditions": null}),
    )
}

/// Calls until the admin has read the token and subscriptions the test wrote to Kafka.
pub async fn until_known(api: &Api, path: &str, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = api.call("GET", path, Some(token), None).await;
        if a.status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "{path}: {a:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn posts(r: &Receiver) -> usize {
    r.received().iter().filter(|r| r.method == "POST").count()
}

pub fn assert_429(a: &Answer, code: &str, retry_after: bool) {
    assert_eq!((a.status, a.code()), (429, code), "{a:?}");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{a:?}"
    );
    assert_eq!(
        a.retry_after.is_some_and(|s| s >= 1),
        retry_after,
        "Retry-After: {a:?}"
    );
}

/// `count` dead letters of `subscription` (of `account`), dead-lettered at `at`.
pub fn dead_letters(
    subscription: &str,
    account: &str,
    count: usize,
    at: &str,
) -> Vec<(String, Value)> {
    (0..count)
        .map(|i| {
            let delivery = json!({
                "delivery_id": format!("dlv_{subscription}_{i:06}"), "event_id": format!("evt-{i}"),
                "event_type": "click", "subscription_id": subscription, "account": account,
                "database": "12", "url": "http://127.0.0.1:9/hook", "format": "json",
                "body": format!("{{\"id\":\"evt-{i}\",\"pad\":\"{}\"}}", "x".repeat(400)),
                "signature": "copernica", "created_at": at
            });
            (
                subscription.to_owned(),
                json!({"delivery": delivery, "attempts": 10, "first_attempt_at": at,
                       "dead_lettered_at": at, "last_error": "HTTP 500", "last_status": 500}),
            )
        })
        .collect()
}

/// How many records `topic` holds (the sum of its partitions' end offsets).
pub fn topic_size(t: &TestTopics, topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = t.settings.table_consumer("quota-size").create().unwrap();
    let partitions = hookline_kafka::table::partition_count(&t.settings, topic).unwrap();
    (0..partitions)
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap();
            high - low
        })
        .sum()
}
