//! The `databases` table (per-database settings), tailed continuously so a changed e-mail field
//! takes effect within a second without a restart.
//!
//! The tracking stage asks it which profile field holds a database's e-mail address; a database
//! without a row, or a row without `email_field`, gets the stage's `--email-field`. Rows are
//! looked up by the event's account *and* database, so a row one account writes never changes
//! how another account's events are joined.
//!
//! Anyone who can write to the topic can put anything on it: a record that does not parse,
//! whose key is not its own `<account>:<database>`, or whose fields are out of bounds is logged,
//! counted in `hookline_stage_quarantined_records_total{stage="databases"}` and skipped (the
//! previous row stays). Parsing happens before the lock is taken; a poisoned lock is taken over.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use hookline_kafka::table::{TableSink, TableTail};
use hookline_kafka::{KafkaError, KafkaSettings};
use hookline_model::{AccountId, DatabaseId, DatabaseSettings};
use hookline_telemetry::Metrics;

/// account → database → e-mail field. Only rows with an `email_field` are held: the display
/// name is for people, not for the join.
type EmailFields = HashMap<String, HashMap<String, Arc<str>>>;

/// A live view of the `databases` topic.
pub struct DatabasesView {
    fields: Arc<RwLock<EmailFields>>,
    default_email_field: Arc<str>,
    _tail: Option<TableTail>,
}

impl DatabasesView {
    /// Reads the whole topic up to its end before returning, so no event is joined with a
    /// half-loaded table. `default_email_field` is `--email-field`.
    pub async fn start(
        settings: &KafkaSettings,
        topic: &str,
        default_email_field: &str,
        metrics: Metrics,
    ) -> Result<Self, KafkaError> {
        let fields = Arc::new(RwLock::new(EmailFields::new()));
        let sink = DatabasesSink {
            fields: fields.clone(),
            metrics,
        };
        let tail = TableTail::follow_all(settings, "hookline-databases-view", topic, sink).await?;
        let rows: usize = read(&fields).values().map(HashMap::len).sum();
        tracing::info!(topic, databases = rows, "database settings loaded");
        Ok(Self {
            fields,
            default_email_field: default_email_field.into(),
            _tail: Some(tail),
        })
    }

    /// [`DatabasesView::start`] for the join stage `stage` (`tracking`), from its flags.
    pub async fn start_for_stage(
        stage: &str,
        common: &hookline_config::CommonArgs,
        args: &hookline_config::JoinStageArgs,
        metrics: Metrics,
    ) -> Result<Self, KafkaError> {
        let settings =
            KafkaSettings::from_common(common).with_client_id(&format!("hookline-{stage}"));
        Self::start(
            &settings,
            &common.topics().databases,
            &args.email_field,
            metrics,
        )
        .await
    }

    /// A view without a topic, for this module's tests: every database uses
    /// `default_email_field` until a test's sink writes rows.
    #[cfg(test)]
    fn defaults_only(default_email_field: &str) -> Self {
        Self {
            fields: Arc::default(),
            default_email_field: default_email_field.into(),
            _tail: None,
        }
    }

    /// The profile field that holds the e-mail address of `account`'s `database`.
    pub fn email_field(&self, account: &AccountId, database: &DatabaseId) -> Arc<str> {
        read(&self.fields)
            .get(account.as_str())
            .and_then(|dbs| dbs.get(database.as_str()))
            .map_or_else(|| self.default_email_field.clone(), Arc::clone)
    }
}

fn read(fields: &RwLock<EmailFields>) -> std::sync::RwLockReadGuard<'_, EmailFields> {
    fields.read().unwrap_or_else(PoisonError::into_inner)
}

struct DatabasesSink {
    fields: Arc<RwLock<EmailFields>>,
    metrics: Metrics,
}

/// What one record asks of the table, worked out before the lock is taken.
enum Change {
    /// Set (`Some`) or clear (`None`: a tombstone, or a row without `email_field`).
    Set {
        account: String,
        database: String,
        field: Option<Arc<str>>,
    },
    /// Skipped: its quarantine class (`json`, `key`, `schema`).
    Skip(&'static str),
}

fn change(partition: i32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Change {
    let Some(key) = key.and_then(|k| std::str::from_utf8(k).ok()) else {
        tracing::warn!(
            partition,
            offset,
            "database settings record without a UTF-8 key ignored"
        );
        return Change::Skip("key");
    };
    let Some(bytes) = value else {
        return match key.split_once(':') {
            Some((account, database)) => Change::Set {
                account: account.to_owned(),
                database: database.to_owned(),
                field: None,
            },
            None => Change::Skip("key"),
        };
    };
    let row = match serde_json::from_slice::<DatabaseSettings>(bytes) {
        Ok(row) => row,
        Err(e) => {
            tracing::warn!(partition, offset, key, error = %e, "malformed database settings ignored");
            return Change::Skip("json");
        }
    };
    if let Err(reason) = row.check(key) {
        tracing::warn!(
            partition,
            offset,
            key,
            reason,
            "database settings refused; the previous row stays"
        );
        return Change::Skip(if key == row.key() { "schema" } else { "key" });
    }
    Change::Set {
        account: row.account.as_str().to_owned(),
        database: row.database.as_str().to_owned(),
        field: row.email_field.map(Arc::from),
    }
}

impl TableSink for DatabasesSink {
    fn apply(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        match change(partition, offset, key, value) {
            Change::Set {
                account,
                database,
                field,
            } => {
                let mut fields = self.fields.write().unwrap_or_else(PoisonError::into_inner);
                match field {
                    Some(field) => {
                        fields.entry(account).or_default().insert(database, field);
                    }
                    None => {
                        if let Some(dbs) = fields.get_mut(&account) {
                            dbs.remove(&database);
                            if dbs.is_empty() {
                                fields.remove(&account);
                            }
                        }
                    }
                }
            }
            Change::Skip(class) => self
                .metrics
                .quarantined
                .with_label_values(&["databases", class])
                .inc(),
        }
        self.metrics
            .table_records
            .with_label_values(&["databases"])
            .inc();
    }

    fn forget_partition(&mut self, _partition: i32) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> (DatabasesView, DatabasesSink) {
        let view = DatabasesView::defaults_only("email");
        let sink = DatabasesSink {
            fields: view.fields.clone(),
            metrics: Metrics::new(),
        };
        (view, sink)
    }

    fn row(account: &str, database: &str, field: Option<&str>) -> Vec<u8> {
        let mut v = serde_json::json!({"account": account, "database": database,
            "modified": "2026-12-02T10:00:00Z"});
        if let Some(f) = field {
            v["email_field"] = f.into();
        }
        serde_json::to_vec(&v).unwrap()
    }

    fn field(view: &DatabasesView, account: &str, database: &str) -> String {
        view.email_field(
            &AccountId::new(account).unwrap(),
            &DatabaseId::new(database).unwrap(),
        )
        .to_string()
    }

    fn refused(sink: &DatabasesSink, class: &str) -> u64 {
        sink.metrics
            .quarantined
            .with_label_values(&["databases", class])
            .get()
    }

    #[test]
    fn a_row_names_the_field_of_its_own_account_only() {
        let (view, mut sink) = view();
        sink.apply(
            0,
            0,
            Some(b"1001:12"),
            Some(&row("1001", "12", Some("emailaddress"))),
        );
        assert_eq!(field(&view, "1001", "12"), "emailaddress");
        assert_eq!(
            field(&view, "1002", "12"),
            "email",
            "another account's database 12"
        );
        assert_eq!(field(&view, "1001", "13"), "email");
        // a row without the field, then a tombstone: back to the default
        sink.apply(0, 1, Some(b"1001:12"), Some(&row("1001", "12", None)));
        assert_eq!(field(&view, "1001", "12"), "email");
        sink.apply(
            0,
            2,
            Some(b"1001:12"),
            Some(&row("1001", "12", Some("mail"))),
        );
        sink.apply(0, 3, Some(b"1001:12"), None);
        assert_eq!(field(&view, "1001", "12"), "email");
        assert!(
            read(&view.fields).is_empty(),
            "emptied accounts are dropped"
        );
    }

    #[test]
    fn hostile_records_are_counted_and_skipped_and_the_previous_row_stays() {
        let (view, mut sink) = view();
        sink.apply(
            0,
            0,
            Some(b"1001:12"),
            Some(&row("1001", "12", Some("emailaddress"))),
        );
        // another account's key carrying a row for 1001, and the reverse
        sink.apply(0, 1, Some(b"1002:12"), Some(&row("1001", "12", Some("x"))));
        sink.apply(0, 2, Some(b"1001:12"), Some(&row("1002", "12", Some("x"))));
        sink.apply(0, 3, Some(b"1001:12"), Some(b"\xff{not json"));
        sink.apply(0, 4, Some(b"1001:12"), Some(&row("1001", "12", Some(""))));
        sink.apply(0, 5, None, Some(&row("1001", "12", Some("x"))));
        sink.apply(0, 6, Some(b"no-colon"), None);
        assert_eq!(refused(&sink, "key"), 4);
        assert_eq!(refused(&sink, "json"), 1);
        assert_eq!(refused(&sink, "schema"), 1);
        assert_eq!(field(&view, "1001", "12"), "emailaddress");
        assert_eq!(field(&view, "1002", "12"), "email");
    }
}
