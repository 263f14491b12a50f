//! Every schema against valid samples (including the examples of `docs/contracts.md`) and against
//! invalid ones, checking where the error is reported and what it says.

use hookline_model::{
    timefmt, AccountId, DatabaseId, DatabaseSettings, DomainRecord, DomainStatus, TokenRecord,
    TokenRole,
};
use hookline_schemas::{validators, SchemaKind, SchemaViolation, Validators};
use serde_json::{json, Value};

#[track_caller]
fn assert_valid(kind: SchemaKind, value: &Value) {
    if let Err(e) = validators().validate(kind, value) {
        panic!("{kind:?} should accept {value}, but: {e}");
    }
    assert!(validators().is_valid(kind, value));
}

#[track_caller]
fn assert_invalid(kind: SchemaKind, value: &Value, path: &str, fragment: &str) -> SchemaViolation {
    let err = match validators().validate(kind, value) {
        Ok(()) => panic!("{kind:?} should reject {value}"),
        Err(e) => e,
    };
    assert!(!validators().is_valid(kind, value));
    assert_eq!(err.path, path, "path of {err} for {value}");
    assert!(
        err.message.contains(fragment),
        "message {:?} should contain {fragment:?}",
        err.message
    );
    err
}

/// `base` with `key` set to `v` (or removed when `v` is `None`).
fn with(base: &Value, key: &str, v: Option<Value>) -> Value {
    let mut out = base.clone();
    let map = out.as_object_mut().expect("object sample");
    match v {
        Some(v) => {
            map.insert(key.to_owned(), v);
        }
        None => {
            map.remove(key);
        }
    }
    out
}

// ---------------------------------------------------------------- the schemas themselves

#[test]
fn every_schema_compiles_and_declares_its_id() {
    let v = Validators::new();
    for kind in SchemaKind::ALL {
        let schema: Value = serde_json::from_str(kind.schema_json()).unwrap();
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{kind:?}"
        );
        assert_eq!(schema["$id"], kind.schema_id().as_str());
        assert_eq!(
            kind.schema_id(),
            format!("https://hookline.dev/schemas/{}", kind.file_name())
        );
        assert!(
            schema["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{kind:?} title"
        );
        assert!(schema["description"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
        assert_eq!(schema["type"], "object", "{kind:?}");
        // every schema rejects a non-object
        assert!(v.validate(kind, &json!([])).is_err());
    }
}

/// Walks a schema and returns the pointer of every property schema without a `description`.
fn undescribed(node: &Value, at: &str, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (k, child) in map {
                let here = format!("{at}/{k}");
                if k == "properties" {
                    if let Value::Object(props) = child {
                        for (name, prop) in props {
                            let is_if_branch = at.ends_with("/if");
                            if prop.get("description").is_none()
                                && !is_if_branch
                                && !at.contains("/then")
                            {
                                out.push(format!("{here}/{name}"));
                            }
                        }
                    }
                }
                undescribed(child, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                undescribed(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_property_has_a_description() {
    for kind in SchemaKind::ALL {
        let schema: Value = serde_json::from_str(kind.schema_json()).unwrap();
        let mut missing = Vec::new();
        undescribed(&schema, "", &mut missing);
        assert!(
            missing.is_empty(),
            "{}: no description at {missing:?}",
            kind.file_name()
        );
    }
}

#[test]
fn every_file_in_schemas_dir_is_embedded_and_identical() {
    let dir = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("../../schemas");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".schema.json"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = SchemaKind::ALL
        .iter()
        .map(|k| k.file_name().to_owned())
        .collect();
    embedded.sort();
    assert_eq!(on_disk, embedded);
    for kind in SchemaKind::ALL {
        let text = std::fs::read_to_string(dir.join(kind.file_name())).unwrap();
        assert_eq!(text, kind.schema_json(), "{}", kind.file_name());
    }
}

#[test]
fn topics_match_the_design() {
    let topics: Vec<&str> = SchemaKind::ALL.iter().map(|k| k.topic()).collect();
    assert_eq!(
        topics,
        [
            "tracking",
            "profile-changes",
            "profiles",
            "subscriptions",
            "deliveries",
            "retries",
            "outcomes",
            "dead-letter",
            "quarantine",
            "tokens",
            "domains",
            "endpoint-health",
            "databases"
        ]
    );
}

#[test]
fn validators_are_shared_and_thread_safe() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Validators>();
    assert!(std::ptr::eq(validators(), validators()));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let v = json!({"id": format!("e{i}"), "type": "open", "account": "1", "database": "2",
                    "profile": "3", "timestamp": "2026-11-25T10:15:00Z"});
                validators().validate(SchemaKind::TrackingEvent, &v).is_ok()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap());
    }
}

#[test]
fn violation_displays_path_and_message() {
    let err = validators()
        .validate(
            SchemaKind::ProfileState,
            &json!({"account": "1", "database": "2"}),
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "/: missing required field \"profile\"");
}

// ---------------------------------------------------------------- tracking-event

fn design_tracking_event() -> Value {
    serde_json::from_str(
        r#"{"id": "evt-7f3a", "type": "click", "account": "1001", "database": "12", "profile": "4711",
 "collection": null, "subprofile": null, "mailing": "m-20261125-01", "recipient": "jane@example.com",
 "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7",
 "useragent": "Mozilla/5.0", "referer": "https://mail.example/",
 "headers": {"User-Agent": "Mozilla/5.0", "Accept-Language": "nl"},
 "original": "https://shop.example/offer", "tags": ["black-friday"]}"#,
    )
    .unwrap()
}

#[test]
fn tracking_event_accepts_the_design_example_and_each_type() {
    let k = SchemaKind::TrackingEvent;
    assert_valid(k, &design_tracking_event());
    let common = json!({"id": "evt-1", "account": "1001", "database": "12", "profile": "4711",
        "timestamp": "2026-11-25T10:15:00.123+01:00"});
    assert_valid(k, &with(&common, "type", Some(json!("delivery"))));
    assert_valid(
        k,
        &json!({"id": "evt-2", "type": "open", "account": "1001", "database": "12", "profile": "4711",
            "collection": "orders", "subprofile": "77", "timestamp": "2026-11-25T10:15:00Z",
            "ip": "2001:db8::1", "useragent": "", "referer": "", "headers": {}, "tags": []}),
    );
    assert_valid(
        k,
        &json!({"id": "evt-3", "type": "bounce", "account": "1001", "database": "12", "profile": "4711",
            "timestamp": "2026-11-25T10:15:00Z", "envelope": "bounce@mail.example",
            "mime": "From: MAILER-DAEMON\r\n\r\n..."}),
    );
    for code in [json!(550), json!("550")] {
        assert_valid(
            k,
            &json!({"id": "evt-4", "type": "failure", "account": "1001", "database": "12",
                "profile": "4711", "timestamp": "2026-11-25T10:15:00Z", "action": "failed",
                "state": "RCPT TO", "code": code, "extended": "5.1.1", "description": "no such user"}),
        );
    }
    // unknown extra fields are allowed (kept and passed on)
    let mut extra = design_tracking_event();
    extra["x-campaign"] = json!({"nested": [1, 2]});
    extra["time"] = json!(1_764_065_700);
    assert_valid(k, &extra);
}

#[test]
fn tracking_event_rejects_bad_values() {
    let k = SchemaKind::TrackingEvent;
    let ok = design_tracking_event();
    assert_invalid(
        k,
        &with(&ok, "profile", None),
        "/",
        "missing required field \"profile\"",
    );
    assert_invalid(
        k,
        &with(&ok, "timestamp", None),
        "/",
        "missing required field \"timestamp\"",
    );
    assert_invalid(
        k,
        &with(&ok, "type", Some(json!("klik"))),
        "/type",
        "\"type\" must be one of click, open, bounce, failure, delivery (got \"klik\")",
    );
    assert_invalid(
        k,
        &with(&ok, "database", Some(json!("12:34"))),
        "/database",
        "\"database\" must not contain ':'",
    );
    assert_invalid(
        k,
        &with(&ok, "subprofile", Some(json!("a:b"))),
        "/subprofile",
        "must not contain ':'",
    );
    assert_invalid(
        k,
        &with(&ok, "account", Some(json!(1001))),
        "/account",
        "\"account\" must be a string, not an integer",
    );
    assert_invalid(
        k,
        &with(&ok, "collection", Some(json!(5))),
        "/collection",
        "\"collection\" must be a string or null, not an integer",
    );
    assert_invalid(
        k,
        &with(&ok, "profile", Some(json!(""))),
        "/profile",
        "\"profile\" must not be empty",
    );
    assert_invalid(
        k,
        &with(&ok, "profile", Some(json!("p".repeat(129)))),
        "/profile",
        "at most 128 characters",
    );
    assert_invalid(
        k,
        &with(&ok, "timestamp", Some(json!("2026-11-25 10:15:00"))),
        "/timestamp",
        "must be an RFC 3339 date-time",
    );
    assert_invalid(
        k,
        &with(&ok, "timestamp", Some(json!(1_764_065_700))),
        "/timestamp",
        "must be a string",
    );
    assert_invalid(
        k,
        &with(&ok, "headers", Some(json!({"X-Count": 3}))),
        "/headers/X-Count",
        "\"X-Count\" must be a string, not an integer",
    );
    assert_invalid(
        k,
        &with(&ok, "tags", Some(json!(["ok", 7]))),
        "/tags/1",
        "\"tags[1]\" must be a string",
    );
    assert_invalid(
        k,
        &with(&ok, "tags", Some(json!("black-friday"))),
        "/tags",
        "must be an array, not a string",
    );
    assert_invalid(
        k,
        &with(&ok, "action", Some(json!("bounced"))),
        "/action",
        "must be one of failure, failed",
    );
    assert_invalid(
        k,
        &with(&ok, "code", Some(json!(true))),
        "/code",
        "\"code\" must be a string or an integer, not a boolean",
    );
    assert_invalid(
        k,
        &json!(["not", "an", "object"]),
        "/",
        "the value must be an object, not an array",
    );
}

// ---------------------------------------------------------------- profile-change

fn design_profile_change() -> Value {
    serde_json::from_str(
        r#"{"id": "chg-91b2", "account": "1001", "database": "12", "profile": "4711", "collection": null, "subprofile": null,
 "action": "update", "trigger": "rest", "timestamp": "2026-11-25T10:16:00Z",
 "parameters": {"name": "Mike"}, "fields": {"name": "Mike", "email": "mike@example.com"}, "interests": ["vip"]}"#,
    )
    .unwrap()
}

#[test]
fn profile_change_accepts_the_design_example_and_variants() {
    let k = SchemaKind::ProfileChange;
    assert_valid(k, &design_profile_change());
    // a subprofile change
    let mut sub = design_profile_change();
    sub["collection"] = json!("orders");
    sub["subprofile"] = json!("991");
    assert_valid(k, &sub);
    // minimal delete without collection/subprofile/parameters/interests
    assert_valid(
        k,
        &json!({"id": "chg-1", "account": "1", "database": "12", "profile": "4711", "action": "delete",
            "trigger": "import", "timestamp": "2026-11-25T10:16:00Z", "fields": {}}),
    );
    // every trigger, and extra fields
    for trigger in [
        "publisher",
        "rest",
        "soap",
        "click",
        "open",
        "failure",
        "bounce",
        "import",
        "copy",
    ] {
        let mut v = with(&design_profile_change(), "trigger", Some(json!(trigger)));
        v["source_system"] = json!("crm");
        assert_valid(k, &v);
    }
}

#[test]
fn profile_change_rejects_bad_values() {
    let k = SchemaKind::ProfileChange;
    let ok = design_profile_change();
    assert_invalid(
        k,
        &with(&ok, "fields", None),
        "/",
        "missing required field \"fields\"",
    );
    assert_invalid(
        k,
        &with(&ok, "trigger", None),
        "/",
        "missing required field \"trigger\"",
    );
    assert_invalid(
        k,
        &with(&ok, "action", Some(json!("upsert"))),
        "/action",
        "\"action\" must be one of create, update, delete",
    );
    assert_invalid(
        k,
        &with(&ok, "trigger", Some(json!("api"))),
        "/trigger",
        "must be one of publisher, rest, soap, click, open, failure, bounce, import, copy",
    );
    assert_invalid(
        k,
        &with(&ok, "profile", Some(json!("47:11"))),
        "/profile",
        "must not contain ':'",
    );
    assert_invalid(
        k,
        &with(&ok, "fields", Some(json!(["name"]))),
        "/fields",
        "must be an object, not an array",
    );
    assert_invalid(
        k,
        &with(&ok, "interests", Some(json!("vip"))),
        "/interests",
        "must be an array",
    );
    assert_invalid(
        k,
        &with(&ok, "interests", Some(json!([1]))),
        "/interests/0",
        "\"interests[0]\" must be a string",
    );
    // collection and subprofile come together
    let half = with(&ok, "collection", Some(json!("orders")));
    assert_invalid(
        k,
        &half,
        "/subprofile",
        "\"subprofile\" must be a string, not null (collection and subprofile are set together)",
    );
    let half = with(
        &with(&ok, "subprofile", Some(json!("991"))),
        "collection",
        None,
    );
    assert_invalid(
        k,
        &half,
        "/",
        "missing required field \"collection\" (collection and subprofile are set together)",
    );
}

// ---------------------------------------------------------------- profile-state

fn profile_state() -> Value {
    json!({"account": "1001", "database": "12", "profile": "4711",
        "created": "2026-01-02 03:04:05", "modified": "2026-11-25T10:16:00Z",
        "fields": {"name": "Mike", "email": "mike@example.com", "age": 42},
        "interests": ["vip"],
        "subprofiles": {"orders:991": {"created": "2026-11-01 00:00:00", "modified": null,
            "fields": {"total": "12.50"}}}})
}

#[test]
fn profile_state_accepts_samples() {
    let k = SchemaKind::ProfileState;
    assert_valid(k, &profile_state());
    assert_valid(k, &json!({"account": "1", "database": "2", "profile": "3"}));
    assert_valid(
        k,
        &json!({"account": "1", "database": "2", "profile": "3", "created": null, "modified": null,
            "fields": {}, "interests": [], "subprofiles": {}, "seeded_by": "migration"}),
    );
}

#[test]
fn profile_state_rejects_bad_values() {
    let k = SchemaKind::ProfileState;
    let ok = profile_state();
    assert_invalid(
        k,
        &with(&ok, "database", None),
        "/",
        "missing required field \"database\"",
    );
    assert_invalid(
        k,
        &with(&ok, "account", Some(json!("1:2"))),
        "/account",
        "must not contain ':'",
    );
    assert_invalid(
        k,
        &with(&ok, "created", Some(json!(17))),
        "/created",
        "\"created\" must be a string or null",
    );
    assert_invalid(
        k,
        &with(&ok, "fields", Some(json!("x"))),
        "/fields",
        "\"fields\" must be an object",
    );
    assert_invalid(
        k,
        &with(&ok, "interests", Some(json!([true]))),
        "/interests/0",
        "must be a string",
    );
    assert_invalid(
        k,
        &with(&ok, "subprofiles", Some(json!({"991": {"fields": {}}}))),
        "/subprofiles",
        "key \"991\" of \"subprofiles\" must have the form <collection>:<subprofile>",
    );
    assert_invalid(
        k,
        &with(
            &ok,
            "subprofiles",
            Some(json!({"orders:991": {"fields": []}})),
        ),
        "/subprofiles/orders:991/fields",
        "\"fields\" must be an object, not an array",
    );
    assert_invalid(
        k,
        &with(&ok, "subprofiles", Some(json!({"orders:991": "state"}))),
        "/subprofiles/orders:991",
        "\"orders:991\" must be an object, not a string",
    );
}

// ---------------------------------------------------------------- subscription

fn subscription() -> Value {
    json!({
        "id": "sub-1", "account": "1001", "database": "12", "collection": null,
        "events": ["click", "update"], "actions": ["create", "update", "delete"],
        "triggers": ["publisher", "rest"],
        "conditions": {"all": [{"field": "name", "op": "contains", "value": "Mike"},
            {"any": [{"interest": "vip", "op": "has"},
                     {"field": "city", "op": "equals", "other_field": "home_city"}]}]},
        "url": "https://d.example/dir/hook.php?x=1", "format": "form", "status": "active",
        "verification": {"method": "file", "token": "abc", "verified_at": "2026-11-25T10:00:00Z"},
        "limits": {"max_in_flight": 4, "per_second": 2.5}, "ordered": false,
        "signature": "copernica",
        "created": "2026-11-25T09:00:00Z", "updated": "2026-11-25T10:00:00Z"
    })
}

#[test]
fn subscription_accepts_samples() {
    let k = SchemaKind::Subscription;
    assert_valid(k, &subscription());
    // the minimal form: only the required fields; no condition
    assert_valid(
        k,
        &json!({"id": "tenant:sub-2", "account": "1", "database": "2", "events": [],
            "url": "http://127.0.0.1:8080/hook", "status": "unverified"}),
    );
    let mut v = subscription();
    v["conditions"] = Value::Null;
    v["collection"] = json!("orders");
    v["format"] = json!("xml");
    v["status"] = json!("paused");
    v["signature"] = json!("standard-webhooks");
    v["ordered"] = json!(true);
    assert_valid(k, &v);
}

#[test]
fn subscription_rejects_bad_values() {
    let k = SchemaKind::Subscription;
    let ok = subscription();
    assert_invalid(
        k,
        &with(&ok, "url", None),
        "/",
        "missing required field \"url\"",
    );
    assert_invalid(
        k,
        &with(&ok, "events", None),
        "/",
        "missing required field \"events\"",
    );
    assert_invalid(
        k,
        &with(&ok, "url", Some(json!("ftp://d.example/hook"))),
        "/url",
        "\"url\" must be an http:// or https:// URL",
    );
    assert_invalid(
        k,
        &with(&ok, "url", Some(json!("https://d.example/a b"))),
        "/url",
        "must be an absolute URI",
    );
    assert_invalid(
        k,
        &with(&ok, "events", Some(json!(["click", "klick"]))),
        "/events/1",
        "\"events[1]\" must be one of click, open, bounce, failure, delivery, create, update, delete",
    );
    assert_invalid(
        k,
        &with(&ok, "events", Some(json!(["open", "open"]))),
        "/events",
        "must not contain duplicates",
    );
    assert_invalid(
        k,
        &with(&ok, "actions", Some(json!(["click"]))),
        "/actions/0",
        "must be one of create, update, delete",
    );
    assert_invalid(
        k,
        &with(&ok, "triggers", Some(json!(["web"]))),
        "/triggers/0",
        "must be one of publisher, rest",
    );
    assert_invalid(
        k,
        &with(&ok, "status", Some(json!("enabled"))),
        "/status",
        "must be one of unverified, active, paused, disabled",
    );
    assert_invalid(
        k,
        &with(&ok, "format", Some(json!("yaml"))),
        "/format",
        "must be one of form, json, xml",
    );
    assert_invalid(
        k,
        &with(&ok, "signature", Some(json!("hmac"))),
        "/signature",
        "must be one of copernica, standard-webhooks",
    );
    assert_invalid(
        k,
        &with(&ok, "conditions", Some(json!("name contains Mike"))),
        "/conditions",
        "\"conditions\" must be an object or null, not a string",
    );
    assert_invalid(
        k,
        &with(&ok, "limits", Some(json!({"max_in_flight": 0}))),
        "/limits/max_in_flight",
        "\"max_in_flight\" must be at least 1",
    );
    assert_invalid(
        k,
        &with(&ok, "limits", Some(json!({"max_in_flight": 2.5}))),
        "/limits/max_in_flight",
        "must be an integer, not a number",
    );
    assert_invalid(
        k,
        &with(&ok, "limits", Some(json!({"per_second": 0}))),
        "/limits/per_second",
        "\"per_second\" must be greater than 0",
    );
    assert_invalid(
        k,
        &with(&ok, "ordered", Some(json!("yes"))),
        "/ordered",
        "must be a boolean",
    );
    assert_invalid(
        k,
        &with(&ok, "database", Some(json!("12:3"))),
        "/database",
        "must not contain ':'",
    );
    assert_invalid(
        k,
        &with(&ok, "id", Some(json!(""))),
        "/id",
        "\"id\" must not be empty",
    );
    assert_invalid(
        k,
        &with(&ok, "updated", Some(json!("today"))),
        "/updated",
        "RFC 3339",
    );
}

// ---------------------------------------------------------------- delivery

fn delivery() -> Value {
    json!({
        "delivery_id": "dlv_0123456789abcdef01234567", "event_id": "evt-7f3a", "event_type": "click",
        "subscription_id": "sub-1", "account": "1001", "database": "12", "collection": null,
        "url": "https://d.example/hook", "format": "json", "content_type": "application/json",
        "body": "{\"id\":\"evt-7f3a\"}", "ordered": false, "signature": "copernica",
        "created_at": "2026-11-25T10:15:01.250Z",
        "source": {"topic": "hookline.tracking", "partition": 3, "offset": 1042}
    })
}

#[test]
fn delivery_accepts_samples() {
    let k = SchemaKind::Delivery;
    assert_valid(k, &delivery());
    let mut minimal = delivery();
    for f in [
        "collection",
        "content_type",
        "ordered",
        "signature",
        "source",
    ] {
        minimal.as_object_mut().unwrap().remove(f);
    }
    assert_valid(k, &minimal);
    assert_valid(k, &with(&delivery(), "event_type", Some(json!("delete"))));
}

#[test]
fn delivery_rejects_bad_values() {
    let k = SchemaKind::Delivery;
    let ok = delivery();
    assert_invalid(
        k,
        &with(&ok, "body", None),
        "/",
        "missing required field \"body\"",
    );
    assert_invalid(
        k,
        &with(&ok, "created_at", None),
        "/",
        "missing required field \"created_at\"",
    );
    assert_invalid(
        k,
        &with(&ok, "priority", Some(json!(1))),
        "/",
        "unknown field \"priority\"",
    );
    assert_invalid(
        k,
        &with(&ok, "event_type", Some(json!("unsubscribe"))),
        "/event_type",
        "must be one of click, open, bounce, failure, delivery, create, update, delete",
    );
    assert_invalid(
        k,
        &with(&ok, "body", Some(json!({"id": 1}))),
        "/body",
        "\"body\" must be a string, not an object",
    );
    assert_invalid(
        k,
        &with(&ok, "format", Some(json!("JSON"))),
        "/format",
        "must be one of form, json, xml",
    );
    assert_invalid(
        k,
        &with(
            &ok,
            "source",
            Some(json!({"topic": "t", "partition": -1, "offset": 0})),
        ),
        "/source/partition",
        "\"partition\" must be at least 0",
    );
    assert_invalid(
        k,
        &with(&ok, "source", Some(json!({"topic": "t", "partition": 0}))),
        "/source",
        "missing required field \"offset\"",
    );
    assert_invalid(
        k,
        &with(
            &ok,
            "source",
            Some(json!({"topic": "t", "partition": 0, "offset": 1, "key": "x"})),
        ),
        "/source",
        "unknown field \"key\" in \"source\"",
    );
    assert_invalid(
        k,
        &with(&ok, "url", Some(json!("mailto:a@b.example"))),
        "/url",
        "http:// or https://",
    );
}

// ---------------------------------------------------------------- retry

fn retry() -> Value {
    json!({"delivery": delivery(), "attempt": 2, "not_before": "2026-11-25T10:15:31Z",
        "first_attempt_at": "2026-11-25T10:15:01Z", "last_error": "HTTP 503", "last_status": 503})
}

#[test]
fn retry_accepts_samples() {
    let k = SchemaKind::Retry;
    assert_valid(k, &retry());
    let mut v = retry();
    v["last_error"] = Value::Null;
    v["last_status"] = Value::Null;
    v["attempt"] = json!(1);
    assert_valid(k, &v);
}

#[test]
fn retry_rejects_bad_values() {
    let k = SchemaKind::Retry;
    let ok = retry();
    assert_invalid(
        k,
        &with(&ok, "attempt", Some(json!(0))),
        "/attempt",
        "\"attempt\" must be at least 1",
    );
    assert_invalid(
        k,
        &with(&ok, "not_before", None),
        "/",
        "missing required field \"not_before\"",
    );
    assert_invalid(
        k,
        &with(&ok, "last_status", Some(json!("503"))),
        "/last_status",
        "must be an integer or null, not a string",
    );
    assert_invalid(
        k,
        &with(&ok, "not_before", Some(json!("soon"))),
        "/not_before",
        "RFC 3339",
    );
    // the embedded delivery is checked through the $ref to the delivery schema
    let mut bad = retry();
    bad["delivery"].as_object_mut().unwrap().remove("url");
    assert_invalid(k, &bad, "/delivery", "missing required field \"url\"");
    let mut bad = retry();
    bad["delivery"]["account"] = json!("1:2");
    assert_invalid(k, &bad, "/delivery/account", "must not contain ':'");
    assert_invalid(
        k,
        &with(&ok, "next", Some(json!(1))),
        "/",
        "unknown field \"next\"",
    );
}

// ---------------------------------------------------------------- outcome

fn outcome() -> Value {
    json!({"delivery_id": "dlv_0123456789abcdef01234567", "event_id": "evt-7f3a",
        "subscription_id": "sub-1", "account": "1001", "attempt": 1, "result": "delivered",
        "started_at": "2026-11-25T10:15:01Z", "finished_at": "2026-11-25T10:15:01.120Z",
        "latency_ms": 120.5, "url": "https://d.example/hook", "http_status": 200,
        "error_class": null, "error": null, "response_excerpt": "ok"})
}

#[test]
fn outcome_accepts_samples() {
    let k = SchemaKind::Outcome;
    assert_valid(k, &outcome());
    assert_valid(
        k,
        &json!({"delivery_id": "d", "event_id": "e", "subscription_id": "s", "account": "1",
            "attempt": 3, "result": "retrying", "started_at": "2026-11-25T10:15:01Z",
            "finished_at": "2026-11-25T10:15:11Z", "latency_ms": 10000, "http_status": null,
            "error_class": "timeout", "error": "no response within 10s"}),
    );
    for result in [
        "delivered",
        "retrying",
        "failed",
        "dead-lettered",
        "skipped-disabled",
        "skipped-paused",
        "circuit-open",
        "disabled",
    ] {
        assert_valid(k, &with(&outcome(), "result", Some(json!(result))));
    }
}

#[test]
fn outcome_rejects_bad_values() {
    let k = SchemaKind::Outcome;
    let ok = outcome();
    assert_invalid(
        k,
        &with(&ok, "finished_at", None),
        "/",
        "missing required field \"finished_at\"",
    );
    assert_invalid(
        k,
        &with(&ok, "result", Some(json!("ok"))),
        "/result",
        "\"result\" must be one of delivered, retrying, failed",
    );
    assert_invalid(
        k,
        &with(&ok, "error_class", Some(json!("http_3xx"))),
        "/error_class",
        "must be one of timeout, dns, connect, tls, http_4xx, http_5xx, refused-by-guard, other, null",
    );
    assert_invalid(
        k,
        &with(&ok, "latency_ms", Some(json!("120"))),
        "/latency_ms",
        "must be a number, not a string",
    );
    assert_invalid(
        k,
        &with(&ok, "latency_ms", Some(json!(-1))),
        "/latency_ms",
        "must be at least 0",
    );
    assert_invalid(
        k,
        &with(&ok, "http_status", Some(json!(200.5))),
        "/http_status",
        "must be an integer or null",
    );
    assert_invalid(
        k,
        &with(&ok, "attempt", Some(json!(0))),
        "/attempt",
        "must be at least 1",
    );
    assert_invalid(
        k,
        &with(&ok, "retry_in", Some(json!(30))),
        "/",
        "unknown field \"retry_in\"",
    );
}

// ---------------------------------------------------------------- dead-letter

fn dead_letter() -> Value {
    json!({"delivery": delivery(), "attempts": 8, "first_attempt_at": "2026-11-25T10:15:01Z",
        "dead_lettered_at": "2026-11-26T10:15:01Z", "last_error": "connection refused",
        "last_status": null})
}

#[test]
fn dead_letter_accepts_samples() {
    let k = SchemaKind::DeadLetter;
    assert_valid(k, &dead_letter());
    let mut v = dead_letter();
    v["last_status"] = json!(500);
    v["last_error"] = Value::Null;
    assert_valid(k, &v);
    // Parked before any attempt, with its reason.
    v["attempts"] = json!(0);
    v["reason"] = json!("subscription-paused");
    assert_valid(k, &v);
}

#[test]
fn dead_letter_rejects_bad_values() {
    let k = SchemaKind::DeadLetter;
    let ok = dead_letter();
    assert_invalid(
        k,
        &with(&ok, "attempts", Some(json!(-1))),
        "/attempts",
        "must be at least 0",
    );
    assert_invalid(k, &with(&ok, "reason", Some(json!("bored"))), "/reason", "");
    assert_invalid(
        k,
        &with(&ok, "attempts", Some(json!("8"))),
        "/attempts",
        "must be an integer, not a string",
    );
    assert_invalid(
        k,
        &with(&ok, "last_error", None),
        "/",
        "missing required field \"last_error\"",
    );
    assert_invalid(
        k,
        &with(&ok, "dead_lettered_at", Some(json!("2026-13-01T00:00:00Z"))),
        "/dead_lettered_at",
        "RFC 3339",
    );
    let mut bad = dead_letter();
    bad["delivery"]["format"] = json!("csv");
    assert_invalid(
        k,
        &bad,
        "/delivery/format",
        "\"format\" must be one of form, json, xml",
    );
    assert_invalid(
        k,
        &with(&ok, "delivery", Some(json!(null))),
        "/delivery",
        "\"delivery\" must be an object, not null",
    );
}

// ---------------------------------------------------------------- quarantine

fn quarantine() -> Value {
    json!({"stage": "tracking", "source_topic": "hookline.tracking", "partition": 0, "offset": 17,
        "reason": "/: missing required field \"profile\"", "quarantined_at": "2026-11-25T10:15:02Z",
        "key_base64": "MTI6NDcxMQ==", "value_base64": "eyJpZCI6ICJlIn0=", "key": "12:4711"})
}

#[test]
fn quarantine_accepts_samples() {
    let k = SchemaKind::Quarantine;
    assert_valid(k, &quarantine());
    let mut v = quarantine();
    v["key_base64"] = Value::Null;
    v["value_base64"] = Value::Null;
    v.as_object_mut().unwrap().remove("key");
    assert_valid(k, &v);
    let mut v = quarantine();
    v["key_base64"] = json!("/w==");
    v["key"] = Value::Null;
    v["value_base64"] = json!("");
    assert_valid(k, &v);
    let mut v = quarantine();
    v["truncated"] = json!(true);
    v["key_size"] = json!(7);
    v["value_size"] = json!(800_000);
    assert_valid(k, &v);
}

#[test]
fn quarantine_records_built_by_the_model_validate_whole_and_truncated() {
    let k = SchemaKind::Quarantine;
    let value = vec![b'x'; 50_000];
    let mut whole = hookline_model::QuarantineRecord::new(
        "tracking",
        "hookline.tracking",
        0,
        3,
        Some(b"12:3"),
        Some(&value),
        "value is not JSON",
    );
    let json = whole.to_json_within(1_000_000).expect("fits");
    assert_valid(k, &serde_json::from_slice(&json).unwrap());
    let mut cut = hookline_model::QuarantineRecord::new(
        "tracking",
        "hookline.tracking",
        0,
        3,
        None,
        Some(&value),
        "value is not JSON",
    );
    let json = cut.to_json_within(10_000).expect("fits");
    let v: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["truncated"], json!(true));
    assert_valid(k, &v);
}

#[test]
fn quarantine_rejects_bad_values() {
    let k = SchemaKind::Quarantine;
    let ok = quarantine();
    assert_invalid(
        k,
        &with(&ok, "reason", None),
        "/",
        "missing required field \"reason\"",
    );
    assert_invalid(
        k,
        &with(&ok, "value_base64", None),
        "/",
        "missing required field \"value_base64\"",
    );
    assert_invalid(
        k,
        &with(&ok, "value_base64", Some(json!("{\"id\": \"e\"}"))),
        "/value_base64",
        "\"value_base64\" must be standard base64",
    );
    assert_invalid(
        k,
        &with(&ok, "key_base64", Some(json!("MTI6NDcxMQ"))),
        "/key_base64",
        "must be standard base64",
    );
    assert_invalid(
        k,
        &with(&ok, "offset", Some(json!(-1))),
        "/offset",
        "\"offset\" must be at least 0",
    );
    assert_invalid(
        k,
        &with(&ok, "partition", Some(json!("0"))),
        "/partition",
        "must be an integer, not a string",
    );
    assert_invalid(
        k,
        &with(&ok, "reason", Some(json!(""))),
        "/reason",
        "must not be empty",
    );
    assert_invalid(
        k,
        &with(&ok, "value", Some(json!("raw"))),
        "/",
        "unknown field \"value\"",
    );
    assert_invalid(
        k,
        &with(&ok, "truncated", Some(json!("yes"))),
        "/truncated",
        "must be a boolean",
    );
    assert_invalid(
        k,
        &with(&ok, "value_size", Some(json!(-1))),
        "/value_size",
        "\"value_size\" must be at least 0",
    );
}

// ---------------------------------------------------------------- token

fn token() -> Value {
    json!({"id": "0123456789abcdef", "role": "account", "account": "1001",
        "secret_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "label": "shop integration", "created": "2026-11-25T10:15:00.123Z"})
}

#[test]
fn token_accepts_samples_and_real_records() {
    let k = SchemaKind::Token;
    assert_valid(k, &token());
    assert_valid(k, &with(&token(), "label", None));
    let mut operator = with(&token(), "account", None);
    operator["role"] = json!("operator");
    assert_valid(k, &operator);
    // extra fields are allowed (older readers accept newer records)
    assert_valid(
        k,
        &with(&token(), "last_used", Some(json!("2026-11-26T00:00:00Z"))),
    );
    // what the model writes, for both roles
    for (role, account, label) in [
        (
            TokenRole::Account,
            Some(AccountId::new("1001").unwrap()),
            Some("shop".to_owned()),
        ),
        (TokenRole::Operator, None, None),
    ] {
        let record = TokenRecord {
            id: "a5e26756b4da0f1c".into(),
            role,
            account,
            secret_sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .into(),
            label,
            created: timefmt::now_rfc3339(),
        };
        assert_valid(k, &serde_json::to_value(&record).unwrap());
    }
}

#[test]
fn token_rejects_bad_values() {
    let k = SchemaKind::Token;
    let ok = token();
    assert_invalid(
        k,
        &with(&ok, "secret_sha256", None),
        "/",
        "missing required field \"secret_sha256\"",
    );
    assert_invalid(
        k,
        &with(&ok, "created", None),
        "/",
        "missing required field \"created\"",
    );
    assert_invalid(
        k,
        &with(&ok, "role", Some(json!("admin"))),
        "/role",
        "\"role\" must be one of account, operator (got \"admin\")",
    );
    assert_invalid(
        k,
        &with(&ok, "id", Some(json!("0123456789ABCDEF"))),
        "/id",
        "\"id\" must be 16 lower-case hex digits",
    );
    assert_invalid(
        k,
        &with(&ok, "id", Some(json!("0123456789abcde"))),
        "/id",
        "must be 16 lower-case hex digits",
    );
    assert_invalid(
        k,
        &with(&ok, "secret_sha256", Some(json!("9f86d081"))),
        "/secret_sha256",
        "\"secret_sha256\" must be 64 lower-case hex digits",
    );
    assert_invalid(
        k,
        &with(
            &ok,
            "secret_sha256",
            Some(json!(
                "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
            )),
        ),
        "/secret_sha256",
        "must be 64 lower-case hex digits",
    );
    assert_invalid(
        k,
        &with(&ok, "account", Some(json!("1:2"))),
        "/account",
        "must not contain ':'",
    );
    assert_invalid(
        k,
        &with(&ok, "created", Some(json!("2026-11-25 10:15:00"))),
        "/created",
        "RFC 3339",
    );
    assert_invalid(
        k,
        &with(&ok, "label", Some(json!(7))),
        "/label",
        "\"label\" must be a string, not an integer",
    );
    // an account token without its account
    assert_invalid(
        k,
        &with(&ok, "account", None),
        "/",
        "missing required field \"account\" (an account token is bound to one account)",
    );
    // an operator token with one
    assert_invalid(
        k,
        &with(&ok, "role", Some(json!("operator"))),
        "/account",
        "\"account\" is not allowed (an operator token is bound to no account)",
    );
}

// ---------------------------------------------------------------- domain

fn domain() -> Value {
    json!({"account": "1001", "domain": "mail.example.com",
        "token": "3f9c2a7b41d08e6f5a2c9b1d7e4f60a8c3b5d2e1", "status": "pending",
        "created": "2026-11-25T10:15:00.123Z"})
}

#[test]
fn domain_accepts_samples_and_real_records() {
    let k = SchemaKind::Domain;
    assert_valid(k, &domain());
    let mut validated = domain();
    validated["status"] = json!("validated");
    validated["validated"] = json!("2026-11-25T10:20:00Z");
    assert_valid(k, &validated);
    for name in [
        "example.com",
        "xn--bcher-kva.example",
        "_dmarc.example.org",
        "a-b.c-d.example",
        "1.example",
    ] {
        assert_valid(k, &with(&domain(), "domain", Some(json!(name))));
    }
    // any stored token the verification crate accepts: 32 to 128 URL-safe base64 characters
    assert_valid(k, &with(&domain(), "token", Some(json!("A".repeat(32)))));
    assert_valid(k, &with(&domain(), "token", Some(json!("a-_Z".repeat(32)))));
    // extra fields are allowed (older readers accept newer records)
    assert_valid(k, &with(&domain(), "note", Some(json!("x"))));
    // what the model writes, pending and validated
    let mut record = DomainRecord {
        account: AccountId::new("1001").unwrap(),
        domain: "example.com".into(),
        token: "0123456789abcdef0123456789abcdef01234567".into(),
        status: DomainStatus::Pending,
        created: timefmt::now_rfc3339(),
        validated: None,
    };
    assert_eq!(record.key(), "1001/example.com");
    assert_valid(k, &serde_json::to_value(&record).unwrap());
    record.status = DomainStatus::Validated;
    record.validated = Some(timefmt::now_rfc3339());
    assert_valid(k, &serde_json::to_value(&record).unwrap());
}

#[test]
fn domain_rejects_bad_values() {
    let k = SchemaKind::Domain;
    let ok = domain();
    for field in ["account", "domain", "token", "status", "created"] {
        assert_invalid(
            k,
            &with(&ok, field, None),
            "/",
            &format!("missing required field \"{field}\""),
        );
    }
    for name in [
        "Example.com",
        "example.com.",
        "com",
        "-a.example",
        "a-.example",
        "a..example",
        "b\u{fc}cher.example",
        "example.com/x",
        "",
    ] {
        assert_invalid(
            k,
            &with(&ok, "domain", Some(json!(name))),
            "/domain",
            "\"domain\" must be a lower-case domain name",
        );
    }
    let long_label = format!("{}.example", "a".repeat(64));
    assert_invalid(
        k,
        &with(&ok, "domain", Some(json!(long_label))),
        "/domain",
        "must be a lower-case domain name",
    );
    let too_long = format!("{}example", "abcdefghi.".repeat(25)); // 257 characters
    assert_invalid(
        k,
        &with(&ok, "domain", Some(json!(too_long))),
        "/domain",
        "\"domain\" must be at most 253 characters long",
    );
    assert_invalid(
        k,
        &with(&ok, "status", Some(json!("verified"))),
        "/status",
        "\"status\" must be one of pending, validated (got \"verified\")",
    );
    assert_invalid(
        k,
        &with(&ok, "token", Some(json!("abc"))),
        "/token",
        "\"token\" must be at least 32 characters long",
    );
    assert_invalid(
        k,
        &with(&ok, "token", Some(json!("x".repeat(129)))),
        "/token",
        "at most 128 characters",
    );
    assert_invalid(
        k,
        &with(&ok, "token", Some(json!(format!("{}=", "a".repeat(40))))),
        "/token",
        "\"token\" must contain only A-Z, a-z, 0-9, '-' and '_'",
    );
    assert_invalid(
        k,
        &with(&ok, "account", Some(json!(""))),
        "/account",
        "\"account\" must not be empty",
    );
    assert_invalid(
        k,
        &with(&ok, "validated", Some(json!("now"))),
        "/validated",
        "RFC 3339",
    );
    // validated, but without the time it was
    assert_invalid(
        k,
        &with(&ok, "status", Some(json!("validated"))),
        "/",
        "missing required field \"validated\" (a validated domain records when it was validated)",
    );
}

// ---------------------------------------------------------------- endpoint-health

/// As the sender writes it (`EndpointHealth` in crates/sender: unset times are null).
fn endpoint_health() -> Value {
    json!({"subscription_id": "tenant:sub-1", "state": "open",
        "failing_since": "2026-11-25T10:00:00.000Z", "opened_at": "2026-11-25T10:05:00.000Z",
        "open_until": "2026-11-25T10:05:30.000Z", "cool_down_ms": 30000,
        "updated_at": "2026-11-25T10:05:00.001Z"})
}

#[test]
fn endpoint_health_accepts_samples() {
    let k = SchemaKind::EndpointHealth;
    assert_valid(k, &endpoint_health());
    // a healthy endpoint: every time null, as the sender writes it
    assert_valid(
        k,
        &json!({"subscription_id": "sub-1", "state": "closed", "failing_since": null,
            "opened_at": null, "open_until": null, "cool_down_ms": 0,
            "updated_at": "2026-11-25T10:05:00Z"}),
    );
    // the optional times may also be absent (the sender reads them with a default)
    assert_valid(
        k,
        &json!({"subscription_id": "sub-1", "state": "half-open", "cool_down_ms": 60000,
            "updated_at": "2026-11-25T10:05:00Z"}),
    );
}

#[test]
fn endpoint_health_rejects_bad_values() {
    let k = SchemaKind::EndpointHealth;
    let ok = endpoint_health();
    for field in ["subscription_id", "state", "cool_down_ms", "updated_at"] {
        assert_invalid(
            k,
            &with(&ok, field, None),
            "/",
            &format!("missing required field \"{field}\""),
        );
    }
    assert_invalid(
        k,
        &with(&ok, "state", Some(json!("half_open"))),
        "/state",
        "\"state\" must be one of closed, open, half-open (got \"half_open\")",
    );
    assert_invalid(
        k,
        &with(&ok, "cool_down_ms", Some(json!(-1))),
        "/cool_down_ms",
        "\"cool_down_ms\" must be at least 0",
    );
    assert_invalid(
        k,
        &with(&ok, "cool_down_ms", Some(json!(1.5))),
        "/cool_down_ms",
        "must be an integer, not a number",
    );
    assert_invalid(
        k,
        &with(&ok, "failing_since", Some(json!("yesterday"))),
        "/failing_since",
        "RFC 3339",
    );
    assert_invalid(
        k,
        &with(&ok, "open_until", Some(json!(1_764_065_700))),
        "/open_until",
        "\"open_until\" must be a string or null, not an integer",
    );
    assert_invalid(
        k,
        &with(&ok, "subscription_id", Some(json!(""))),
        "/subscription_id",
        "must not be empty",
    );
    assert_invalid(
        k,
        &with(&ok, "failures", Some(json!(3))),
        "/",
        "unknown field \"failures\"",
    );
}

// ---------------------------------------------------------------- databases

fn database() -> Value {
    json!({"account": "1001", "database": "12", "name": "Newsletter NL",
        "email_field": "emailaddress", "modified": "2026-12-02T10:00:00Z"})
}

#[test]
fn database_accepts_samples_and_what_the_model_writes() {
    let k = SchemaKind::Database;
    assert_valid(k, &database());
    assert_valid(k, &with(&database(), "name", None));
    assert_valid(k, &with(&database(), "email_field", None));
    assert_valid(k, &with(&database(), "colour", Some(json!("blue"))));
    let row = DatabaseSettings {
        account: AccountId::new("1001").unwrap(),
        database: DatabaseId::new("12").unwrap(),
        name: None,
        email_field: Some("E-mail adres".into()),
        modified: timefmt::now_rfc3339(),
    };
    assert_valid(k, &serde_json::to_value(&row).unwrap());
}

#[test]
fn database_rejects_bad_values() {
    let k = SchemaKind::Database;
    let ok = database();
    for field in ["account", "database", "modified"] {
        assert_invalid(
            k,
            &with(&ok, field, None),
            "/",
            &format!("missing required field \"{field}\""),
        );
    }
    assert_invalid(
        k,
        &with(&ok, "email_field", Some(json!(""))),
        "/email_field",
        "must not be empty",
    );
    assert_invalid(
        k,
        &with(&ok, "database", Some(json!("12:4711"))),
        "/database",
        "",
    );
    assert_invalid(
        k,
        &with(&ok, "email_field", Some(json!("e\nmail"))),
        "/email_field",
        "",
    );
    assert_invalid(
        k,
        &with(&ok, "name", Some(json!("x".repeat(201)))),
        "/name",
        "",
    );
}
