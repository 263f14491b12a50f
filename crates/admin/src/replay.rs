//! `POST /v1/subscriptions/{id}/replay`: a subscription's dead letters back onto `deliveries`,
//! keeping their delivery ids.
//!
//! - **Never blocks the API.** The dead-letter topic is read on a blocking thread
//!   (`hookline_replay`), and each replay runs as a task of its own, so neither a slow read nor
//!   a client that hangs up holds up other requests.
//! - **Bounded.** At most `--max-concurrent-replays` run on an instance, one per account at a
//!   time (else `429` with `Retry-After`), each within `--replay-deadline`; a replay that runs
//!   out of time has replayed nothing.
//! - **Idempotent.** Every replay has an id: the caller's `replay_id`, or one generated and
//!   returned. A second call with the same id (same account) returns the first call's report —
//!   waiting for it if it still runs — instead of replaying again, so a client that timed out
//!   can safely ask again. A replay that failed having sent nothing forgets its id (asking again
//!   runs it); one that sent part keeps its error. The newest [`IDS_KEPT`] ids are kept per
//!   instance, in memory.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use hookline_model::AccountId;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::auth::AccountCaller;
use crate::error::ApiError;
use crate::subscriptions::owned;
use crate::AppState;

/// How many replay ids an instance remembers.
pub const IDS_KEPT: usize = 1000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// RFC 3339; dead letters from this time on.
    pub since: Option<String>,
    /// RFC 3339; dead letters before this time.
    pub until: Option<String>,
    /// Count what would be replayed without sending anything.
    #[serde(default)]
    pub dry_run: bool,
    /// Makes the call idempotent: a repeated id returns the first call's report.
    pub replay_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub subscription: String,
    pub matched: usize,
    pub dry_run: bool,
    pub replay_id: String,
}

/// What a finished replay left: its report, or the error to answer with.
type Finished = Result<ReplayReport, (StatusCode, &'static str, String)>;

struct Entry {
    /// What was asked, so a reused id with other parameters is refused.
    request: String,
    done: watch::Receiver<Option<Finished>>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<(AccountId, String), Entry>,
    order: VecDeque<(AccountId, String)>,
    running: HashSet<AccountId>,
}

/// The replays of one instance: running ones and recent results by id.
pub struct Replays {
    max_concurrent: usize,
    deadline: Duration,
    inner: Mutex<Inner>,
}

impl Replays {
    pub fn new(max_concurrent: usize, deadline: Duration) -> Self {
        Self {
            max_concurrent: max_concurrent.max(1),
            deadline,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the end of `account`'s replay `id`.
    fn finish(&self, account: &AccountId, id: &str, forget: bool) {
        let mut inner = self.lock();
        inner.running.remove(account);
        if forget {
            let key = (account.clone(), id.to_owned());
            inner.by_id.remove(&key);
            inner.order.retain(|k| *k != key);
        }
    }
}

fn valid_replay_id(id: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then_some(()).ok_or_else(|| {
        ApiError::invalid(
            "replay_id",
            "must be 1 to 128 characters of letters, digits, '-', '_', '.' and ':'",
        )
    })
}

fn parse_time(field: &str, raw: &Option<String>) -> Result<Option<time::OffsetDateTime>, ApiError> {
    raw.as_deref()
        .map(|s| {
            hookline_model::timefmt::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    field,
                    format!("{s:?} is not an RFC 3339 time such as 2026-11-25T10:00:00Z"),
                )
            })
        })
        .transpose()
}

/// `POST /v1/subscriptions/{id}/replay`.
pub async fn replay(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ReplayReport>, ApiError> {
    let sub = owned(&state, &caller.account, &id)?;
    let req: ReplayRequest = crate::delivery::optional_body(&body)?;
    let filter = hookline_replay::Filter {
        subscription: Some(sub.id.0.clone()),
        since: parse_time("since", &req.since)?,
        until: parse_time("until", &req.until)?,
    };
    let replay_id = match req.replay_id {
        Some(r) => {
            valid_replay_id(&r)?;
            r
        }
        None => format!("rpl_{}", uuid::Uuid::new_v4().simple()),
    };
    let request = format!("{}|{:?}|{:?}|{}", sub.id, req.since, req.until, req.dry_run);
    let key = (caller.account.clone(), replay_id.clone());
    let replays = &state.replays;
    let mut done = {
        let mut inner = replays.lock();
        match inner.by_id.get(&key) {
            Some(e) if e.request != request => {
                return Err(ApiError::conflict(
                    "replay_id_reused",
                    format!(
                        "replay_id {replay_id:?} was used for another replay; use a new id for \
                         a different request"
                    ),
                ))
            }
            Some(e) => e.done.clone(),
            None => admit(&state, &mut inner, key, request, filter, req.dry_run)?,
        }
    };
    let wait = replays.deadline + Duration::from_secs(60);
    let finished = tokio::time::timeout(wait, done.wait_for(Option::is_some))
        .await
        .ok()
        .and_then(|r| r.ok().and_then(|v| v.clone()))
        .ok_or_else(|| {
            ApiError::unavailable(format!(
                "replay {replay_id} is still running; ask again with the same replay_id for its \
                 result"
            ))
        })?;
    finished
        .map(Json)
        .map_err(|(status, code, message)| ApiError::new(status, code, message))
}

/// Starts a new replay for the account of `key`, unless it runs one already or the instance
/// runs as many as it may; the receiver gets its result.
fn admit(
    state: &AppState,
    inner: &mut Inner,
    key: (AccountId, String),
    request: String,
    filter: hookline_replay::Filter,
    dry_run: bool,
) -> Result<watch::Receiver<Option<Finished>>, ApiError> {
    let account = &key.0;
    if inner.running.contains(account) {
        return Err(ApiError::too_many(
            "replay_running",
            "a replay of this account is running; wait for it (or ask again with \
             its replay_id)",
            Duration::from_secs(5),
        ));
    }
    if inner.running.len() >= state.replays.max_concurrent {
        return Err(ApiError::too_many(
            "replays_busy",
            "this instance runs as many replays as it may; try again shortly",
            Duration::from_secs(5),
        ));
    }
    crate::limits::charge(&state.limits.replay, account, "replays")?;
    let (tx, rx) = watch::channel(None);
    inner.running.insert(account.clone());
    inner.by_id.insert(
        key.clone(),
        Entry {
            request,
            done: rx.clone(),
        },
    );
    inner.order.push_back(key.clone());
    while inner.order.len() > IDS_KEPT {
        if let Some(old) = inner.order.pop_front() {
            inner.by_id.remove(&old);
        }
    }
    start(state, key, filter, dry_run, tx);
    Ok(rx)
}

/// Runs the replay as a task of its own: it finishes (and records its result) even when the
/// caller hangs up.
fn start(
    state: &AppState,
    (account, replay_id): (AccountId, String),
    filter: hookline_replay::Filter,
    dry_run: bool,
    tx: watch::Sender<Option<Finished>>,
) {
    let state = state.clone();
    tokio::spawn(async move {
        let opts = hookline_replay::Options {
            dry_run,
            deadline: state.replays.deadline,
            ..hookline_replay::Options::default()
        };
        let subscription = filter.subscription.clone().unwrap_or_default();
        let result =
            hookline_replay::replay_with(&state.settings, &state.topics, &filter, &opts, |_| {})
                .await;
        let (finished, forget) = match result {
            Ok(matched) => {
                if dry_run {
                    tracing::info!(%subscription, matched, %replay_id, "dry run: dead letters counted, nothing replayed");
                } else {
                    tracing::info!(%subscription, matched, %replay_id, "dead letters replayed");
                }
                let report = ReplayReport {
                    subscription,
                    matched,
                    dry_run,
                    replay_id: replay_id.clone(),
                };
                (Ok(report), false)
            }
            Err(e) => {
                tracing::warn!(%subscription, %replay_id, error = %e, "replay failed");
                let forget = e.nothing_sent();
                let status = StatusCode::SERVICE_UNAVAILABLE;
                (Err((status, "unavailable", e.to_string())), forget)
            }
        };
        state.replays.finish(&account, &replay_id, forget);
        let _ = tx.send(Some(finished));
    });
}
