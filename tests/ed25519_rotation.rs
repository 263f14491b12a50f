//! Rotating the Ed25519 master key of the Standard Webhooks profile, as an operator does it:
//! `hookline keys rotate-ed25519 --overlap …` on the key files, then a sender started on them.
//! During the overlap every request carries two `v1a` signatures, one verifying with the
//! account's new public key and one with the key its receiver trusted before the rotation; and
//! the keys published for the account are both, the retired one with its expiry.

use std::process::Command;
use std::time::{Duration, SystemTime};

use hookline_integration_tests::{binary, key_path, produce, Sender};
use hookline_signing::standard_webhooks::{self, verify, StandardVerifyError};
use hookline_signing::Signers;
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_overlap_requests_verify_with_the_old_and_the_new_account_key() {
    let key = key_path("ed25519-rotation");
    let before = Signers::load_or_generate(&key, None).unwrap();
    let old_key = before.ed25519_for("1001").unwrap();

    let out = Command::new(binary("hookline"))
        .args(["keys", "rotate-ed25519", "--overlap", "1h", "--signing-key"])
        .arg(&key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rotate-ed25519 failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("new Ed25519 master key"), "{stdout}");
    let after = Signers::load_or_generate(&key, None).unwrap();
    let new_key = after.ed25519_for("1001").unwrap();
    assert_ne!(new_key.public_key_raw(), old_key.public_key_raw());

    // Published for the account: the new key without expiry, the retired one with it.
    let published = after
        .published_for_account("1001", &[], time::OffsetDateTime::now_utc())
        .unwrap();
    let ed: Vec<_> = published
        .iter()
        .filter(|k| k.algorithm == standard_webhooks::ALGORITHM)
        .collect();
    assert_eq!(ed.len(), 2, "{published:?}");
    assert_eq!(ed[0].key_id, new_key.key_id());
    assert!(ed[0].expires_at.is_none());
    assert_eq!(ed[1].key_id, old_key.key_id());
    assert!(ed[1].expires_at.is_some());

    // A delivery sent by a sender started on the rotated files.
    let receiver = Receiver::start(200).await;
    let url = receiver.url("/sw");
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let sub = json!({"id": "sub-rot", "account": "1001", "database": "12", "events": ["click"],
        "url": url, "format": "json", "status": "active", "signature": "standard-webhooks"});
    produce(&t, &t.topics.subscriptions, &[("sub-rot".into(), sub)]).await;
    let body = json!({"id": "evt-rot-1", "type": "click"}).to_string();
    let delivery = json!({"delivery_id": "dlv_rot_1", "event_id": "evt-rot-1",
        "event_type": "click", "subscription_id": "sub-rot", "account": "1001",
        "database": "12", "url": url, "format": "json", "body": body,
        "signature": "standard-webhooks", "created_at": hookline_model::timefmt::now_rfc3339()});
    produce(&t, &t.topics.deliveries, &[("sub-rot".into(), delivery)]).await;
    let sender = Sender::start(&t, &key, &[]);
    assert!(
        eventually(Duration::from_secs(60), || receiver.count() >= 1).await,
        "the delivery arrived"
    );
    sender.stop(Duration::from_secs(30)).await;

    let request = receiver.received().remove(0);
    let header = |name: &str| request.header(name);
    let signatures = header(standard_webhooks::SIGNATURE_HEADER).unwrap();
    assert_eq!(signatures.split_whitespace().count(), 2, "{signatures}");
    let now = SystemTime::now();
    for (who, key) in [("new", &new_key), ("old", &old_key)] {
        assert_eq!(
            verify(header, &request.body, &[key.public_key_raw()], now),
            Ok(()),
            "a receiver trusting only the {who} key verifies"
        );
    }
    let stranger = before.ed25519_for("2002").unwrap();
    assert_eq!(
        verify(header, &request.body, &[stranger.public_key_raw()], now),
        Err(StandardVerifyError::BadSignature),
        "another account's key does not verify"
    );
}
