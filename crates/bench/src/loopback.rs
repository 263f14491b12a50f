//! Section 4, the loopback POST ceiling: how many webhook POSTs per second Hookline's own HTTP
//! client gets answered on this machine when the receiver costs nothing. Server and client
//! share the process and its cores, as the sender and a receiver share them end to end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::Router;
use hookline_outbound::{HttpClient, HttpOptions, NetworkGuard};
use http::{HeaderName, HeaderValue, Method};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::signing::SigningCeiling;
use crate::table::Row;
use crate::timing::quantile;

const SECTION: &str = "loopback POST";

/// A server on 127.0.0.1:0 that answers every request 200 with a two-byte body. Stops when
/// `stop` is cancelled.
async fn tiny_server(stop: CancellationToken) -> anyhow::Result<std::net::SocketAddr> {
    let app = Router::new().fallback(|_body: Bytes| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok(addr)
}

/// Keeps `concurrency` POSTs of `body` in flight for `warmup + budget`, counting the answers
/// that arrive within `budget`. Returns the rows and the requests per second.
pub async fn run(
    warmup: Duration,
    budget: Duration,
    concurrency: usize,
    body: Bytes,
    ceiling: &SigningCeiling,
) -> anyhow::Result<(Vec<Row>, f64)> {
    let stop = CancellationToken::new();
    let addr = tiny_server(stop.clone()).await?;
    let url = format!("http://{addr}/webhook");
    let client = HttpClient::new(
        NetworkGuard::new(vec!["127.0.0.0/8".parse()?]),
        HttpOptions {
            pool_max_idle_per_host: concurrency,
            ..HttpOptions::default()
        },
    );
    let start = Instant::now() + warmup;
    let end = start + budget;
    let mut tasks = JoinSet::new();
    let url = Arc::new(url);
    for _ in 0..concurrency {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < end {
                let sent = Instant::now();
                let headers = vec![(
                    HeaderName::from_static("content-type"),
                    HeaderValue::from_static("application/json"),
                )];
                let ok = client
                    .request(Method::POST, &url, headers, body.clone())
                    .await
                    .is_ok_and(|r| r.status == 200);
                let done = Instant::now();
                if done >= start && done < end {
                    if ok {
                        latencies.push((done - sent).as_secs_f64() * 1e3);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(r) = tasks.join_next().await {
        let (l, e) = r?;
        latencies.extend(l);
        errors += e;
    }
    stop.cancel();
    anyhow::ensure!(errors == 0, "{errors} loopback POSTs failed");
    latencies.sort_by(f64::total_cmp);
    let rate = latencies.len() as f64 / budget.as_secs_f64();
    let rows = vec![
        Row::num(
            SECTION,
            format!(
                "HttpClient POST {} B json, {concurrency} in flight, HTTP/1.1",
                body.len()
            ),
            rate,
            "req/s",
        )
        .vs(format!(
            "ceiling; {:.1}x one core's cavage signing",
            rate / ceiling.cavage_per_core
        )),
        Row::num(SECTION, "latency p50", quantile(&latencies, 0.5), "ms"),
        Row::num(SECTION, "latency p99", quantile(&latencies, 0.99), "ms"),
    ];
    Ok((rows, rate))
}
