//! `hookline`: the command line. Everything is in the library (`hookline_cli`, `src/lib.rs`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    hookline_cli::main().await
}
