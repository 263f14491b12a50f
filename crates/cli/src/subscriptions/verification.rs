//! `hookline subscriptions verification-file ID`: downloads the file that proves a callback
//! URL is the account's, named as the admin API names it (`<prefix>-<token>.txt`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use http::Method;
use serde_json::Value;

use crate::api::{Api, DEFAULT_TIMEOUT};

/// Writes the verification file of subscription `id` into `dir`; returns its path.
pub async fn download(api: &Api, id: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    let sub = api.get(&["v1", "subscriptions", id], &[]).await?;
    let url = api.url(&["v1", "subscriptions", id, "verification-file"], &[]);
    let answer = api
        .call(Method::GET, url, None, true, DEFAULT_TIMEOUT)
        .await?;
    let name = sub["verification"]["file"]
        .as_str()
        .filter(|n| is_plain_name(n))
        .map(str::to_owned)
        .or_else(|| {
            let token = String::from_utf8_lossy(&answer.raw).trim().to_owned();
            (!token.is_empty()).then(|| format!("hookline-{token}.txt"))
        })
        .filter(|n| is_plain_name(n))
        .context("the admin API named no verification file for this subscription")?;
    let path = dir.join(&name);
    std::fs::write(&path, &answer.raw)
        .with_context(|| format!("writing the verification file {}", path.display()))?;
    Ok(path)
}

/// One file name: no directory part, nothing a path could climb out with.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// What to do with the file, for people.
pub fn next_steps(path: &Path, sub: &Value) -> String {
    let locations: Vec<&str> = sub["verification"]["locations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    format!(
        "wrote {}: publish it so that it is served at {} and run `hookline subscriptions verify {}`",
        path.display(),
        if locations.is_empty() {
            "the callback's directory or the web root".to_owned()
        } else {
            locations.join(" or ")
        },
        sub["id"].as_str().unwrap_or("ID"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_written() {
        assert!(is_plain_name("hookline-0123abcd.txt"));
        assert!(is_plain_name("acme_mail-0123.txt"));
        for bad in [
            "", ".", "..", "../x.txt", "a/b.txt", ".hidden", "a b.txt", "c:\\x",
        ] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }
}
