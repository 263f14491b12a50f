//! Consumer lag per assigned partition, from librdkafka's statistics (every
//! `statistics.interval.ms`, no extra request to the brokers).

use rdkafka::statistics::{Partition, Statistics};

/// The lag of every partition of `topic` this consumer is assigned, in records behind the end.
pub fn partition_lags(statistics: &Statistics, topic: &str) -> Vec<(i32, i64)> {
    statistics
        .topics
        .get(topic)
        .map(|t| {
            t.partitions
                .iter()
                .filter_map(|(p, part)| Some((*p, lag_of(*p, part)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A partition's lag, `None` when it is not assigned (or is librdkafka's internal partition).
/// librdkafka reports `consumer_lag` -1 while nothing was committed yet: such a partition is
/// read from its start (`auto.offset.reset=earliest`), so it is behind by all it holds.
fn lag_of(p: i32, part: &Partition) -> Option<i64> {
    let assigned = !matches!(part.fetch_state.as_str(), "none" | "stopped" | "stopping");
    if p < 0 || !assigned {
        return None;
    }
    if part.consumer_lag >= 0 {
        return Some(part.consumer_lag);
    }
    (part.hi_offset >= 0).then(|| part.hi_offset - part.lo_offset.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(partitions: &[(i32, &str, i64, i64, i64)]) -> Statistics {
        let parts: serde_json::Map<String, serde_json::Value> = partitions
            .iter()
            .map(|(p, state, lo, hi, lag)| {
                let mut v: serde_json::Value =
                    serde_json::from_str(PARTITION).expect("partition JSON");
                v["partition"] = (*p).into();
                v["fetch_state"] = (*state).into();
                v["lo_offset"] = (*lo).into();
                v["hi_offset"] = (*hi).into();
                v["consumer_lag"] = (*lag).into();
                (p.to_string(), v)
            })
            .collect();
        let mut s: serde_json::Value = serde_json::from_str(STATS).expect("statistics JSON");
        s["topics"]["in"]["partitions"] = parts.into();
        serde_json::from_value(s).expect("statistics")
    }

    #[test]
    fn assigned_partitions_report_their_lag_even_before_a_first_commit() {
        let s = stats(&[
            (0, "active", 0, 10, 4),
            // Assigned, nothing committed yet: behind by everything it holds.
            (1, "active", 2, 7, -1),
            // Assigned and empty.
            (2, "offset-query", -1001, -1001, -1),
            // Not (or no longer) assigned, and librdkafka's internal partition.
            (3, "none", 0, 50, 50),
            (-1, "none", -1001, -1001, -1),
        ]);
        let mut lags = partition_lags(&s, "in");
        lags.sort();
        assert_eq!(lags, vec![(0, 4), (1, 5)]);
        assert!(partition_lags(&s, "other").is_empty());
    }

    const PARTITION: &str = r#"{"partition":0,"broker":1,"leader":1,"desired":true,
        "unknown":false,"msgq_cnt":0,"msgq_bytes":0,"xmit_msgq_cnt":0,"xmit_msgq_bytes":0,
        "fetchq_cnt":0,"fetchq_size":0,"fetch_state":"active","query_offset":-1001,
        "next_offset":0,"app_offset":-1001,"stored_offset":-1001,"committed_offset":-1001,
        "eof_offset":-1001,"lo_offset":0,"hi_offset":0,"ls_offset":0,"consumer_lag":-1,
        "consumer_lag_stored":-1,"txmsgs":0,"txbytes":0,"rxmsgs":0,"rxbytes":0,"msgs":0,
        "rx_ver_drops":0,"msgs_inflight":0,"next_ack_seq":0,"next_err_seq":0,"acked_msgid":0}"#;

    const STATS: &str = r#"{"name":"c","client_id":"c","type":"consumer","ts":0,"time":0,
        "age":0,"replyq":0,"msg_cnt":0,"msg_size":0,"msg_max":0,"msg_size_max":0,"tx":0,
        "tx_bytes":0,"rx":0,"rx_bytes":0,"txmsgs":0,"txmsg_bytes":0,"rxmsgs":0,
        "rxmsg_bytes":0,"simple_cnt":0,"metadata_cache_cnt":0,"brokers":{},
        "topics":{"in":{"topic":"in","age":0,"metadata_age":0,"batchsize":{"min":0,"max":0,
        "avg":0,"sum":0,"cnt":0,"stddev":0,"hdrsize":0,"p50":0,"p75":0,"p90":0,"p95":0,
        "p99":0,"p99_99":0,"outofrange":0},"batchcnt":{"min":0,"max":0,"avg":0,"sum":0,
        "cnt":0,"stddev":0,"hdrsize":0,"p50":0,"p75":0,"p90":0,"p95":0,"p99":0,"p99_99":0,
        "outofrange":0},"partitions":{}}}}"#;
}
