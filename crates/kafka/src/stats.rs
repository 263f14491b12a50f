//! librdkafka's statistics (every `statistics.interval.ms`) as the `hookline_kafka_*` gauges:
//! each broker's round trip and waiting requests, and the client's own queues. The consumer
//! contexts of the stages call [`record`] from their `stats` callback; producers made with
//! [`crate::Producer::with_stats`] use [`StatsContext`].

use hookline_telemetry::metrics::BrokerFigures;
use hookline_telemetry::Metrics;
use rdkafka::client::ClientContext;
use rdkafka::statistics::{Broker, Statistics};

/// How often librdkafka reports statistics to a client that has a stats callback.
pub const STATISTICS_INTERVAL_MS: &str = "5000";

/// Records what `statistics` says of the brokers and queues under the label `client`.
pub fn record(metrics: &Metrics, client: &str, statistics: &Statistics) {
    for (node, figures) in broker_figures(statistics) {
        metrics.set_kafka_broker(client, &node, &figures);
    }
    metrics.set_kafka_client_queues(
        client,
        i64::try_from(statistics.msg_cnt).unwrap_or(i64::MAX),
        statistics.replyq,
    );
}

/// The brokers of the cluster (by node id) with their figures. librdkafka also lists the
/// bootstrap addresses and an internal handle, both with node id -1: left out, so the `broker`
/// label takes one value per broker of the cluster.
pub fn broker_figures(statistics: &Statistics) -> Vec<(String, BrokerFigures)> {
    let mut out: Vec<(String, BrokerFigures)> = statistics
        .brokers
        .values()
        .filter(|b| b.nodeid >= 0)
        .map(|b| (b.nodeid.to_string(), figures_of(b)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn figures_of(b: &Broker) -> BrokerFigures {
    // librdkafka reports the round trip in microseconds; no window yet reads as zero.
    let (p50, p99) = b.rtt.as_ref().map_or((0, 0), |w| (w.p50, w.p99));
    BrokerFigures {
        rtt_p50_seconds: p50.max(0) as f64 / 1e6,
        rtt_p99_seconds: p99.max(0) as f64 / 1e6,
        outbuf_requests: b.outbuf_cnt,
        waitresp_requests: b.waitresp_cnt,
    }
}

/// A client context that records statistics under a fixed label, or does nothing without
/// metrics (tools such as the CLI).
#[derive(Clone, Default)]
pub struct StatsContext {
    sink: Option<(Metrics, String)>,
}

impl StatsContext {
    pub fn new(metrics: Metrics, client: &str) -> Self {
        Self {
            sink: Some((metrics, client.to_owned())),
        }
    }

    /// Whether librdkafka should be asked for statistics at all.
    pub fn wants_statistics(&self) -> bool {
        self.sink.is_some()
    }
}

impl ClientContext for StatsContext {
    fn stats(&self, statistics: Statistics) {
        if let Some((metrics, client)) = &self.sink {
            record(metrics, client, &statistics);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statistics document as librdkafka 2.x writes it: a bootstrap handle, the internal
    /// handle and one learned broker with a round-trip window.
    const STATS: &str = r#"{"name":"p","client_id":"hookline-sender","type":"producer","ts":0,
        "time":0,"age":0,"replyq":3,"msg_cnt":42,"msg_size":0,"msg_max":0,"msg_size_max":0,
        "tx":0,"tx_bytes":0,"rx":0,"rx_bytes":0,"txmsgs":0,"txmsg_bytes":0,"rxmsgs":0,
        "rxmsg_bytes":0,"simple_cnt":0,"metadata_cache_cnt":0,"topics":{},
        "brokers":{
          "127.0.0.1:9092/bootstrap":{"name":"127.0.0.1:9092/bootstrap","nodeid":-1,
            "nodename":"127.0.0.1:9092","source":"configured","state":"UP","stateage":0,
            "outbuf_cnt":0,"outbuf_msg_cnt":0,"waitresp_cnt":0,"waitresp_msg_cnt":0,"tx":0,
            "txbytes":0,"txerrs":0,"txretries":0,"txidle":0,"req_timeouts":0,"rx":0,"rxbytes":0,
            "rxerrs":0,"rxcorriderrs":0,"rxpartial":0,"rxidle":0,"req":{},"zbuf_grow":0,
            "buf_grow":0,"toppars":{}},
          "127.0.0.1:9092/1":{"name":"127.0.0.1:9092/1","nodeid":1,"nodename":"127.0.0.1:9092",
            "source":"learned","state":"UP","stateage":0,"outbuf_cnt":2,"outbuf_msg_cnt":0,
            "waitresp_cnt":5,"waitresp_msg_cnt":0,"tx":0,"txbytes":0,"txerrs":0,"txretries":0,
            "txidle":0,"req_timeouts":0,"rx":0,"rxbytes":0,"rxerrs":0,"rxcorriderrs":0,
            "rxpartial":0,"rxidle":0,"req":{},"zbuf_grow":0,"buf_grow":0,"toppars":{},
            "rtt":{"min":100,"max":9000,"avg":1500,"sum":0,"cnt":10,"stddev":0,"hdrsize":0,
              "p50":1200,"p75":0,"p90":0,"p95":0,"p99":8000,"p99_99":0,"outofrange":0}}}}"#;

    #[test]
    fn only_cluster_brokers_are_reported_with_their_round_trip_in_seconds() {
        let s: Statistics = serde_json::from_str(STATS).expect("statistics parse");
        let figures = broker_figures(&s);
        assert_eq!(figures.len(), 1, "{figures:?}");
        let (node, f) = &figures[0];
        assert_eq!(node, "1");
        assert!((f.rtt_p50_seconds - 0.0012).abs() < 1e-9, "{f:?}");
        assert!((f.rtt_p99_seconds - 0.008).abs() < 1e-9, "{f:?}");
        assert_eq!((f.outbuf_requests, f.waitresp_requests), (2, 5));
    }

    #[test]
    fn recorded_figures_appear_in_the_exposition_under_the_client_label() {
        let s: Statistics = serde_json::from_str(STATS).expect("statistics parse");
        let metrics = Metrics::new();
        StatsContext::new(metrics.clone(), "sender-producer").stats(s);
        let text = metrics.render();
        for line in [
            r#"hookline_kafka_broker_rtt_seconds{broker="1",client="sender-producer",quantile="0.99"} 0.008"#,
            r#"hookline_kafka_broker_requests{broker="1",client="sender-producer",queue="waitresp"} 5"#,
            r#"hookline_kafka_client_queue_messages{client="sender-producer",queue="producer"} 42"#,
            r#"hookline_kafka_client_queue_messages{client="sender-producer",queue="reply"} 3"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("broker=\"-1\""), "{text}");
    }
}
