//! Test-only fault injection: environment variables that name a change id at which the process
//! aborts like a SIGKILL (no unwinding, no commit, no flush). Inert unless set; a warning says
//! so at start when one is.

/// Aborts right after the change reached the store, before its deliveries, its table record and
/// its input offset.
pub const CRASH_AFTER_STORE_WRITE_ENV: &str = "HOOKLINE_TEST_CRASH_AFTER_STORE_WRITE";
/// Aborts once the change's table record is acknowledged by the broker, before its input offset
/// is committed.
pub const CRASH_AFTER_TABLE_WRITE_ENV: &str = "HOOKLINE_TEST_CRASH_AFTER_TABLE_WRITE";

/// The crash points set for this process.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    after_store_write: Option<String>,
    after_table_write: Option<String>,
}

impl Faults {
    pub fn from_env() -> Self {
        Self {
            after_store_write: named(CRASH_AFTER_STORE_WRITE_ENV),
            after_table_write: named(CRASH_AFTER_TABLE_WRITE_ENV),
        }
    }

    pub fn after_store_write(&self, change: &str) {
        if self.after_store_write.as_deref() == Some(change) {
            abort(&format!("after the store write of change {change}"));
        }
    }

    /// Whether the process is to abort once `change`'s table record is acknowledged.
    pub fn crashes_after_table_write(&self, change: &str) -> bool {
        self.after_table_write.as_deref() == Some(change)
    }

    pub fn after_table_write(&self, change: &str) {
        if self.crashes_after_table_write(change) {
            abort(&format!("after the table write of change {change}"));
        }
    }
}

fn named(var: &str) -> Option<String> {
    let id = std::env::var(var).ok().filter(|id| !id.is_empty())?;
    tracing::warn!(change = %id, "fault injection is on ({var}); never set this outside tests");
    Some(id)
}

fn abort(at: &str) -> ! {
    eprintln!("fault injection: aborting {at}");
    std::process::abort();
}
