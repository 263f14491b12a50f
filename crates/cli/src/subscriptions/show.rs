//! How `hookline subscriptions ...` shows subscriptions, test webhooks and attempts: aligned
//! tables and `key: value` lines, with the next step to take where there is one.

use serde_json::Value;

use crate::table::{cell, print_fields, print_json, Table};

/// One subscription, as JSON or as fields.
pub fn show(json_out: bool, v: &Value) {
    if json_out {
        print_json(v);
    } else {
        print_subscription(v);
    }
}

/// A table of subscriptions; `with_account` adds the account column (operator view).
pub fn print_list(subs: &Value, with_account: bool) {
    let empty = Vec::new();
    let subs = subs.as_array().unwrap_or(&empty);
    if subs.is_empty() {
        println!("no subscriptions");
        return;
    }
    let mut header = vec!["ID"];
    if with_account {
        header.push("ACCOUNT");
    }
    header.extend([
        "DATABASE",
        "COLLECTION",
        "STATUS",
        "EVENTS",
        "FORMAT",
        "URL",
    ]);
    let mut t = Table::new(&header);
    for s in subs {
        let mut row = vec![cell(&s["id"])];
        if with_account {
            row.push(cell(&s["account"]));
        }
        row.extend([
            cell(&s["database"]),
            cell(&s["collection"]),
            cell(&s["status"]),
            cell(&s["events"]),
            cell(&s["format"]),
            cell(&s["url"]),
        ]);
        t.row(row);
    }
    t.print();
}

/// A subscription as `key: value` lines, with what to do when it is not verified yet.
pub fn print_subscription(s: &Value) {
    let all = |v: &Value| {
        if v.is_null() {
            "all".to_owned()
        } else {
            cell(v)
        }
    };
    // The text form (docs/conditions.md); JSON for a condition it cannot print.
    let conditions = if s["conditions"].is_null() {
        "none".to_owned()
    } else {
        hookline_conditions::to_text(&s["conditions"])
            .unwrap_or_else(|_| s["conditions"].to_string())
    };
    let limits = format!(
        "{} in flight, {} per second",
        cell(&s["limits"]["max_in_flight"]),
        cell(&s["limits"]["per_second"])
    );
    let v = &s["verification"];
    let mut fields = vec![
        ("id", cell(&s["id"])),
        ("account", cell(&s["account"])),
        ("database", cell(&s["database"])),
        ("collection", cell(&s["collection"])),
        ("status", cell(&s["status"])),
        ("events", cell(&s["events"])),
        ("actions", all(&s["actions"])),
        ("triggers", all(&s["triggers"])),
        ("format", cell(&s["format"])),
        ("url", cell(&s["url"])),
        ("conditions", conditions),
        ("limits", limits),
        ("ordered", cell(&s["ordered"])),
        ("signature", cell(&s["signature"])),
    ];
    if !v["verified_by"].is_null() {
        fields.push((
            "verified",
            format!(
                "by {} at {}",
                cell(&v["verified_by"]),
                cell(&v["verified_at"])
            ),
        ));
    }
    fields.push(("circuit", circuit(&s["endpoint_health"])));
    fields.push(("created", cell(&s["created"])));
    fields.push(("updated", cell(&s["updated"])));
    print_fields(&fields);
    if s["status"] == "unverified" && v["token"].is_string() {
        println!();
        println!(
            "Hookline sends nothing to this URL until it is verified. Publish a file named {} \
             whose whole content is the token",
            cell(&v["file"])
        );
        println!("  {}", cell(&v["token"]));
        println!("at one of:");
        for l in v["locations"].as_array().into_iter().flatten() {
            println!("  {}", cell(l));
        }
        println!("{}", verify_next_step(&cell(&s["id"]), &cell(&s["url"])));
    }
}

/// The sender's circuit for the endpoint, from its `endpoint-health` record: closed (and since
/// when attempts fail, if they do), open until when, or half-open.
fn circuit(health: &Value) -> String {
    let failing = health["failing_since"]
        .as_str()
        .map(|t| format!(", failing since {t}"))
        .unwrap_or_default();
    match health["state"].as_str() {
        None => "closed (no failure recorded)".to_owned(),
        Some("open") => format!(
            "open until {} (nothing is sent before){failing}",
            cell(&health["open_until"])
        ),
        Some("half-open") => format!("half-open (one probe decides){failing}"),
        Some(state) => format!("{state}{failing}"),
    }
}

/// What to run once the verification file is published. A validated domain covers a URL only
/// when its host is a domain name, so the `domains add` way is offered for those alone.
fn verify_next_step(id: &str, url: &str) -> String {
    let domain = url::Url::parse(url)
        .ok()
        .and_then(|u| u.domain().map(str::to_owned));
    match domain {
        Some(d) => format!(
            "then run `hookline subscriptions verify {id}` (or validate the domain with `hookline domains add {d}`)."
        ),
        None => format!(
            "then run `hookline subscriptions verify {id}` (the host is an IP address, which no domain validation covers)."
        ),
    }
}

/// The answer to a test webhook.
pub fn print_test(v: &Value) {
    let status = match v["http_status"].as_u64() {
        Some(s) => format!("HTTP {s}"),
        None => "no HTTP answer".to_owned(),
    };
    let latency = format!("{:.1} ms", v["latency_ms"].as_f64().unwrap_or(0.0));
    if v["delivered"].as_bool() == Some(true) {
        println!("delivered: {status} in {latency}");
    } else {
        let class = v["error_class"]
            .as_str()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        println!("NOT delivered: {status} in {latency}{class}");
        if let Some(e) = v["error"].as_str() {
            println!("error:    {e}");
        }
    }
    print_fields(&[
        ("event", cell(&v["event"])),
        ("url", cell(&v["url"])),
        ("delivery", cell(&v["delivery_id"])),
    ]);
    if let Some(r) = v["response_excerpt"]
        .as_str()
        .filter(|r| !r.trim().is_empty())
    {
        println!("response: {}", r.trim_end());
    }
}

pub fn print_attempts(id: &str, attempts: &Value) {
    let empty = Vec::new();
    let attempts = attempts.as_array().unwrap_or(&empty);
    if attempts.is_empty() {
        println!("no attempts recorded for {id} (test webhooks are not recorded)");
        return;
    }
    let mut t = Table::new(&[
        "FINISHED",
        "DELIVERY",
        "ATTEMPT",
        "RESULT",
        "HTTP",
        "LATENCY",
        "NEXT ATTEMPT",
        "ERROR",
    ]);
    for a in attempts {
        let error = match (a["error_class"].as_str(), a["error"].as_str()) {
            (Some(c), Some(e)) => format!("{c}: {e}"),
            (Some(c), None) => c.to_owned(),
            (None, Some(e)) => e.to_owned(),
            (None, None) => "-".to_owned(),
        };
        t.row(vec![
            cell(&a["finished_at"]),
            cell(&a["delivery_id"]),
            match a["replayed_at"].as_str() {
                Some(_) => format!("{} (replayed)", cell(&a["attempt"])),
                None => cell(&a["attempt"]),
            },
            cell(&a["result"]),
            cell(&a["http_status"]),
            format!("{:.0} ms", a["latency_ms"].as_f64().unwrap_or(0.0)),
            cell(&a["next_attempt_at"]),
            error,
        ]);
    }
    t.print();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_circuit_reads_plainly() {
        assert_eq!(circuit(&Value::Null), "closed (no failure recorded)");
        let open = serde_json::json!({"state": "open", "open_until": "2026-12-02T10:00:30Z",
            "failing_since": "2026-12-02T09:58:00Z"});
        assert_eq!(
            circuit(&open),
            "open until 2026-12-02T10:00:30Z (nothing is sent before), failing since 2026-12-02T09:58:00Z"
        );
        let closed = serde_json::json!({"state": "closed", "failing_since": null});
        assert_eq!(circuit(&closed), "closed");
    }

    /// `get` of an unverified subscription on an IP address offered `hookline domains add`,
    /// which can never cover an IP address.
    #[test]
    fn domain_validation_is_offered_for_domain_names_only() {
        let named = verify_next_step("sub_1", "https://hooks.example.com/in.php");
        assert!(
            named.contains("hookline subscriptions verify sub_1")
                && named.contains("hookline domains add hooks.example.com"),
            "{named}"
        );
        for url in ["http://203.0.113.9/x.php", "https://[2001:db8::1]/in"] {
            let ip = verify_next_step("sub_1", url);
            assert!(
                ip.contains("hookline subscriptions verify sub_1") && !ip.contains("domains add"),
                "{ip}"
            );
            assert!(ip.contains("IP address"), "{ip}");
        }
    }
}
