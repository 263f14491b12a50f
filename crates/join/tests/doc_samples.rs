//! The sample webhook bodies in `docs/events.md` are produced by the real code.
//!
//! Every sample is built from a realistic input (the shapes of `docs/contracts.md`, "Input
//! events") by `tracking::enrich` or `profile::apply`, encoded by `hookline_payload::encode`, and
//! compared with the block between `<!-- sample:<name>:<format> -->` and `<!-- /sample -->` in the
//! doc. JSON samples are pretty-printed with `serde_json::to_string_pretty` (the wire body is the
//! same map, compact); `form` and `xml` samples are the exact bytes sent.
//!
//! To regenerate the samples after a change, print them and paste them into the doc:
//!
//! ```text
//! PRINT_DOC_SAMPLES=1 cargo test -p hookline-join --test doc_samples -- --nocapture
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use hookline_join::{profile, tracking};
use hookline_model::{ProfileChange, ProfileState, TrackingEvent};
use hookline_payload::{encode, Format};
use serde_json::{json, Map, Value};

/// The profile field holding the e-mail address (Hookline's default, `HOOKLINE_EMAIL_FIELD`).
const EMAIL_FIELD: &str = "email";

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// The row of profile 4711 in the `profiles` table, with one subprofile (an order).
fn jane() -> ProfileState {
    serde_json::from_value(json!({
        "account": "1001", "database": "12", "profile": "4711",
        "created": "2025-03-14T09:30:00Z", "modified": "2026-11-20T16:45:00Z",
        "fields": {"email": "jane@example.com", "name": "Jane", "city": "Utrecht"},
        "interests": ["vip", "news"],
        "subprofiles": {
            "3:9": {"created": "2026-11-24T18:02:00Z", "modified": "2026-11-24T18:02:00Z",
                    "fields": {"order": "A-1001", "total": "59.95", "status": "shipped"}}
        }
    }))
    .expect("profile state")
}

/// The row of profile 4713, whose mailbox no longer exists.
fn piet() -> ProfileState {
    serde_json::from_value(json!({
        "account": "1001", "database": "12", "profile": "4713",
        "created": "2019-06-01T12:00:00Z", "modified": "2024-02-10T08:15:00Z",
        "fields": {"email": "piet@old-isp.example", "name": "Piet", "city": "Delft"},
        "interests": ["news"],
        "subprofiles": {}
    }))
    .expect("profile state")
}

fn tracking_event(v: Value) -> TrackingEvent {
    serde_json::from_value(v).expect("tracking event")
}

fn change(v: Value) -> ProfileChange {
    serde_json::from_value(v).expect("profile change")
}

/// The click of `docs/contracts.md`.
fn click() -> TrackingEvent {
    tracking_event(json!({
        "id": "evt-7f3a", "type": "click", "account": "1001", "database": "12", "profile": "4711",
        "collection": null, "subprofile": null, "mailing": "m-20261125-01",
        "recipient": "jane@example.com", "timestamp": "2026-11-25T10:15:00Z",
        "ip": "203.0.113.7", "useragent": "Mozilla/5.0", "referer": "https://mail.example/",
        "headers": {"User-Agent": "Mozilla/5.0", "Accept-Language": "nl"},
        "original": "https://shop.example/offer", "tags": ["black-friday"]
    }))
}

/// An open without `recipient`: the body takes it from the profile's `email` field.
fn open() -> TrackingEvent {
    tracking_event(json!({
        "id": "evt-7f31", "type": "open", "account": "1001", "database": "12", "profile": "4711",
        "collection": null, "subprofile": null, "mailing": "m-20261125-01",
        "timestamp": "2026-11-25T10:12:30Z", "ip": "198.51.100.23",
        "useragent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        "referer": "https://mail.example/inbox",
        "headers": {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
                    "Accept": "image/*"},
        "tags": ["black-friday"]
    }))
}

fn bounce() -> TrackingEvent {
    tracking_event(json!({
        "id": "evt-7f40", "type": "bounce", "account": "1001", "database": "12", "profile": "4713",
        "collection": null, "subprofile": null, "mailing": "m-20261125-01",
        "recipient": "piet@old-isp.example", "timestamp": "2026-11-25T10:20:00Z",
        "envelope": "bounce-m-20261125-01-4713@mail.example",
        "mime": "From: MAILER-DAEMON@old-isp.example\r\nTo: bounce-m-20261125-01-4713@mail.example\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\nThe mailbox piet@old-isp.example is full.\r\n",
        "tags": ["black-friday"]
    }))
}

/// A permanent failure, with an extra field (`mta`) that is not part of the contract.
fn failure() -> TrackingEvent {
    tracking_event(json!({
        "id": "evt-7f41", "type": "failure", "account": "1001", "database": "12", "profile": "4713",
        "collection": null, "subprofile": null, "mailing": "m-20261125-01",
        "recipient": "piet@old-isp.example", "timestamp": "2026-11-25T10:00:07Z",
        "action": "failed", "state": "RCPT TO", "code": 550, "extended": "5.1.1",
        "description": "5.1.1 <piet@old-isp.example>: Recipient address rejected: User unknown",
        "tags": ["black-friday"], "mta": "out-3.mail.example"
    }))
}

fn delivery() -> TrackingEvent {
    tracking_event(json!({
        "id": "evt-7f2f", "type": "delivery", "account": "1001", "database": "12", "profile": "4711",
        "collection": null, "subprofile": null, "mailing": "m-20261125-01",
        "recipient": "jane@example.com", "timestamp": "2026-11-25T10:00:05Z",
        "tags": ["black-friday"]
    }))
}

/// A click in a mailing that went to subprofile 9 of collection 3 (an order of profile 4711).
fn click_subprofile() -> TrackingEvent {
    tracking_event(json!({
        "id": "evt-7f50", "type": "click", "account": "1001", "database": "12", "profile": "4711",
        "collection": "3", "subprofile": "9", "mailing": "m-20261125-02",
        "recipient": "jane@example.com", "timestamp": "2026-11-25T12:40:00Z",
        "ip": "203.0.113.7", "useragent": "Mozilla/5.0", "referer": "https://mail.example/",
        "headers": {"User-Agent": "Mozilla/5.0"},
        "original": "https://shop.example/orders/A-1001", "tags": ["order-shipped"]
    }))
}

/// An open by profile 4799, which is not (yet) in the `profiles` table.
fn open_unknown_profile() -> TrackingEvent {
    tracking_event(json!({
        "id": "evt-7f60", "type": "open", "account": "1001", "database": "12", "profile": "4799",
        "collection": null, "subprofile": null, "mailing": "m-20261125-01",
        "recipient": "sam@example.org", "timestamp": "2026-11-25T10:30:00Z",
        "ip": "192.0.2.44", "useragent": "Mozilla/5.0", "referer": "https://mail.example/",
        "headers": {"User-Agent": "Mozilla/5.0"}, "tags": ["black-friday"]
    }))
}

/// Profile 4712 is created, updated and deleted; each change is applied to the state the
/// previous one left in the table.
fn profile_changes() -> [profile::Applied; 3] {
    let create = profile::apply(
        &change(json!({
            "id": "chg-91a0", "account": "1001", "database": "12", "profile": "4712",
            "collection": null, "subprofile": null, "action": "create", "trigger": "rest",
            "timestamp": "2026-11-25T10:05:00Z",
            "parameters": {"email": "mike@example.com", "name": "Mike", "city": "Utrecht"},
            "fields": {"email": "mike@example.com", "name": "Mike", "city": "Utrecht", "phone": ""},
            "interests": ["news"]
        })),
        None,
    );
    let update = profile::apply(
        &change(json!({
            "id": "chg-91b2", "account": "1001", "database": "12", "profile": "4712",
            "collection": null, "subprofile": null, "action": "update", "trigger": "rest",
            "timestamp": "2026-11-25T10:16:00Z",
            "parameters": {"city": "Amsterdam", "phone": "+31 20 123 4567"},
            "fields": {"email": "mike@example.com", "name": "Mike", "city": "Amsterdam",
                       "phone": "+31 20 123 4567"},
            "interests": ["news", "vip"]
        })),
        create.new_state.as_ref(),
    );
    let delete = profile::apply(
        &change(json!({
            "id": "chg-91c7", "account": "1001", "database": "12", "profile": "4712",
            "collection": null, "subprofile": null, "action": "delete", "trigger": "publisher",
            "timestamp": "2026-11-26T08:00:00Z", "parameters": {},
            "fields": {"email": "mike@example.com", "name": "Mike", "city": "Amsterdam",
                       "phone": "+31 20 123 4567"}
        })),
        update.new_state.as_ref(),
    );
    [create, update, delete]
}

/// Subprofile 10 of collection 3 (a new order of profile 4711) is created, updated and deleted.
fn subprofile_changes() -> [profile::Applied; 3] {
    let before = jane();
    let create = profile::apply(
        &change(json!({
            "id": "chg-92a0", "account": "1001", "database": "12", "profile": "4711",
            "collection": "3", "subprofile": "10", "action": "create", "trigger": "import",
            "timestamp": "2026-11-25T11:00:00Z",
            "parameters": {"order": "A-1002", "total": "24.50", "status": "new"},
            "fields": {"order": "A-1002", "total": "24.50", "status": "new"}
        })),
        Some(&before),
    );
    let update = profile::apply(
        &change(json!({
            "id": "chg-92b1", "account": "1001", "database": "12", "profile": "4711",
            "collection": "3", "subprofile": "10", "action": "update", "trigger": "rest",
            "timestamp": "2026-11-25T15:30:00Z",
            "parameters": {"status": "shipped"},
            "fields": {"order": "A-1002", "total": "24.50", "status": "shipped"}
        })),
        create.new_state.as_ref(),
    );
    let delete = profile::apply(
        &change(json!({
            "id": "chg-92c2", "account": "1001", "database": "12", "profile": "4711",
            "collection": "3", "subprofile": "10", "action": "delete", "trigger": "soap",
            "timestamp": "2026-11-27T09:00:00Z", "parameters": {},
            "fields": {"order": "A-1002", "total": "24.50", "status": "shipped"}
        })),
        update.new_state.as_ref(),
    );
    [create, update, delete]
}

// ---------------------------------------------------------------------------------------------
// Samples
// ---------------------------------------------------------------------------------------------

/// Every body shown in the doc, by sample name, in the order of the doc.
fn bodies() -> Vec<(&'static str, Map<String, Value>)> {
    let jane = jane();
    let piet = piet();
    let t =
        |ev: TrackingEvent, p: Option<&ProfileState>| tracking::enrich(&ev, p, EMAIL_FIELD).body;
    let [p_create, p_update, p_delete] = profile_changes();
    let [s_create, s_update, s_delete] = subprofile_changes();
    vec![
        ("click", t(click(), Some(&jane))),
        ("open", t(open(), Some(&jane))),
        ("bounce", t(bounce(), Some(&piet))),
        ("failure", t(failure(), Some(&piet))),
        ("delivery", t(delivery(), Some(&jane))),
        ("click-subprofile", t(click_subprofile(), Some(&jane))),
        ("open-unknown-profile", t(open_unknown_profile(), None)),
        ("profile-create", p_create.enriched.body),
        ("profile-update", p_update.enriched.body),
        ("profile-delete", p_delete.enriched.body),
        ("subprofile-create", s_create.enriched.body),
        ("subprofile-update", s_update.enriched.body),
        ("subprofile-delete", s_delete.enriched.body),
    ]
}

/// Samples also shown in `form` and `xml`, besides JSON.
const ALL_FORMATS: [&str; 2] = ["click", "profile-update"];

struct Sample {
    name: &'static str,
    format: Format,
    text: String,
}

impl Sample {
    fn id(&self) -> String {
        format!("sample:{}:{}", self.name, self.format)
    }

    /// The sample as it appears in the doc: markers around a fenced code block.
    fn block(&self) -> String {
        let lang = match self.format {
            Format::Json => "json",
            Format::Form => "text",
            Format::Xml => "xml",
        };
        format!(
            "<!-- {} -->\n```{lang}\n{}\n```\n<!-- /sample -->",
            self.id(),
            self.text
        )
    }
}

fn samples() -> Vec<Sample> {
    let mut out = Vec::new();
    for (name, body) in bodies() {
        let pretty = serde_json::to_string_pretty(&Value::Object(body.clone())).expect("json");
        out.push(Sample {
            name,
            format: Format::Json,
            text: pretty,
        });
        if ALL_FORMATS.contains(&name) {
            for format in [Format::Form, Format::Xml] {
                let text = String::from_utf8(encode(format, &body)).expect("utf-8 body");
                out.push(Sample { name, format, text });
            }
        }
    }
    out
}

fn doc_path() -> PathBuf {
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("../../docs/events.md")
}

/// The samples in the doc: marker id → the text inside the fenced code block. Each sample is a
/// line `<!-- sample:<name>:<format> -->`, a fenced code block, and a line `<!-- /sample -->`.
fn doc_samples(doc: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(id) = line
            .strip_prefix("<!-- ")
            .and_then(|l| l.strip_suffix(" -->"))
            .filter(|id| id.starts_with("sample:"))
        else {
            continue;
        };
        let mut block = Vec::new();
        let mut closed = false;
        for l in lines.by_ref() {
            if l == "<!-- /sample -->" {
                closed = true;
                break;
            }
            block.push(l);
        }
        assert!(closed, "{id}: no <!-- /sample --> line");
        while block.first().is_some_and(|l| l.is_empty()) {
            block.remove(0);
        }
        while block.last().is_some_and(|l| l.is_empty()) {
            block.pop();
        }
        assert!(
            block.len() >= 2 && block[0].starts_with("```") && block[block.len() - 1] == "```",
            "{id}: the markers must hold one fenced code block"
        );
        let body = block[1..block.len() - 1].join("\n");
        assert!(
            found.insert(id.to_owned(), body).is_none(),
            "{id} appears twice in the doc"
        );
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn docs_events_samples_are_current() {
    let samples = samples();
    if std::env::var_os("PRINT_DOC_SAMPLES").is_some_and(|v| v == "1") {
        for s in &samples {
            println!("\n{}", s.block());
        }
    }
    let path = doc_path();
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut in_doc = doc_samples(&doc);
    let mut problems = Vec::new();
    for s in &samples {
        match in_doc.remove(&s.id()) {
            None => problems.push(format!("missing in the doc:\n{}", s.block())),
            Some(text) if text != s.text => problems.push(format!(
                "{} differs; the code produces:\n{}",
                s.id(),
                s.block()
            )),
            Some(_) => {}
        }
    }
    for id in in_doc.keys() {
        problems.push(format!("{id} is in the doc but no longer generated"));
    }
    assert!(
        problems.is_empty(),
        "docs/events.md is out of date (regenerate with PRINT_DOC_SAMPLES=1 cargo test -p \
         hookline-join --test doc_samples -- --nocapture):\n\n{}",
        problems.join("\n\n")
    );
}

#[test]
fn every_event_type_has_a_sample() {
    let bodies = bodies();
    let types: Vec<(&str, &str)> = bodies
        .iter()
        .map(|(name, b)| (*name, b["type"].as_str().expect("type")))
        .collect();
    for kind in ["click", "open", "bounce", "failure", "delivery"] {
        assert!(types.contains(&(kind, kind)), "no sample of {kind}");
    }
    for action in ["create", "update", "delete"] {
        for of in ["profile", "subprofile"] {
            let name = format!("{of}-{action}");
            assert!(
                types.iter().any(|&(n, t)| n == name && t == action),
                "no sample of {name}"
            );
        }
    }
}

#[test]
fn json_samples_are_the_bodies_sent() {
    for (name, body) in bodies() {
        let sent: Value = serde_json::from_slice(&encode(Format::Json, &body)).expect("json");
        assert_eq!(sent, Value::Object(body), "{name}");
    }
}

/// The statements the doc makes about the samples.
#[test]
fn samples_show_what_the_doc_says() {
    let bodies: BTreeMap<_, _> = bodies().into_iter().collect();
    let b = |name: &str| &bodies[name];

    // Tracking events: the account travels in X-Copernica-ID, not in the body.
    for name in ["click", "open", "bounce", "failure", "delivery"] {
        assert!(!b(name).contains_key("account"), "{name}");
        assert!(!b(name).contains_key("profile_known"), "{name}");
        assert!(!b(name).contains_key("collection"), "{name}");
    }
    assert_eq!(b("click")["time"], 1_795_601_700);
    assert_eq!(b("click")["timestamp"], "2026-11-25 10:15:00");
    // `recipient` comes from the profile when the event has none.
    assert_eq!(b("open")["recipient"], "jane@example.com");
    // Unknown extra input fields pass through.
    assert_eq!(b("failure")["mta"], "out-3.mail.example");
    assert_eq!(b("failure")["code"], 550);
    // A mailing to a subprofile.
    assert_eq!(b("click-subprofile")["collection"], "3");
    assert_eq!(b("click-subprofile")["subprofile"], "9");
    assert_eq!(
        b("click-subprofile")["subprofile_fields"]["order"],
        "A-1001"
    );
    // The profile is not in the table.
    let unknown = b("open-unknown-profile");
    assert_eq!(unknown["profile_known"], false);
    assert_eq!(unknown["fields"], json!({}));
    assert_eq!(unknown["interests"], json!([]));

    // Profile changes.
    assert!(!b("profile-create").contains_key("previous"));
    assert_eq!(
        b("profile-update")["previous"],
        json!({"city": "Utrecht", "phone": ""})
    );
    assert_eq!(b("profile-update")["created"], "2026-11-25 10:05:00");
    assert!(!b("profile-delete").contains_key("previous"));
    assert_eq!(b("profile-delete")["interests"], json!(["news", "vip"]));
    for name in ["profile-create", "profile-update", "profile-delete"] {
        assert!(!b(name).contains_key("collection"), "{name}");
        assert!(!b(name).contains_key("profile_fields"), "{name}");
    }
    for name in [
        "subprofile-create",
        "subprofile-update",
        "subprofile-delete",
    ] {
        assert_eq!(b(name)["collection"], "3", "{name}");
        assert_eq!(b(name)["subprofile"], "10", "{name}");
        assert_eq!(b(name)["profile_fields"]["name"], "Jane", "{name}");
        assert!(!b(name).contains_key("interests"), "{name}");
    }
    assert_eq!(b("subprofile-update")["previous"], json!({"status": "new"}));
    assert_eq!(b("subprofile-update")["created"], "2026-11-25 11:00:00");
    assert_eq!(b("subprofile-delete")["created"], "2026-11-25 11:00:00");
}
