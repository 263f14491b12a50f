//! `hookline completions SHELL` and `hookline man`: shell completions and manual pages,
//! generated from the command line's own definition (clap_complete, clap_mangen), so they
//! always match the binary.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes the completion script for `shell` to `out`. It is made in memory first: the
/// generator panics on a failed write, and a reader that stops early (`| head`) is no error.
pub fn completions(
    shell: clap_complete::Shell,
    mut cmd: clap::Command,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    write_all(out, &script)
}

/// Writes the manual page of `cmd` to `out` (`hookline.1`).
pub fn page(cmd: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let mut roff = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut roff)?;
    write_all(out, &roff)
}

/// Writes and flushes `bytes`; a closed pipe (the reader has what it wanted) is no error.
fn write_all(out: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `hookline man [--dir DIR]`: the top page on stdout, or every page into `dir`.
pub fn man(cmd: clap::Command, dir: Option<&Path>) -> anyhow::Result<()> {
    match dir {
        None => page(cmd, &mut std::io::stdout())?,
        Some(dir) => {
            let written = pages(cmd, dir)?;
            println!(
                "wrote {} manual pages into {}",
                written.len(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// Writes a manual page for `cmd` and every subcommand into `dir` (`hookline.1`,
/// `hookline-subscriptions.1`, `hookline-subscriptions-create.1`, ...); returns the files.
pub fn pages(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(cmd, dir)?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "1")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("hookline"))
        })
        .collect();
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn cmd() -> Command {
        Command::new("hookline")
            .about("Hookline's command line")
            .subcommand(
                Command::new("subscriptions")
                    .about("The account's subscriptions")
                    .subcommand(Command::new("create").arg(Arg::new("url").long("url"))),
            )
    }

    #[test]
    fn completions_name_the_subcommands_and_their_options() {
        let mut out = Vec::new();
        completions(clap_complete::Shell::Bash, cmd(), &mut out).unwrap();
        let script = String::from_utf8(out).unwrap();
        assert!(
            script.contains("subscriptions") && script.contains("--url"),
            "{script}"
        );
    }

    #[test]
    fn pages_are_written_per_command() {
        let dir = std::env::temp_dir().join(format!("hookline-man-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let names: Vec<String> = pages(cmd(), &dir)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "hookline-subscriptions-create.1",
                "hookline-subscriptions.1",
                "hookline.1"
            ]
        );
        let mut one = Vec::new();
        page(cmd(), &mut one).unwrap();
        assert!(String::from_utf8(one).unwrap().contains(".TH hookline 1"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A reader that closes early is no error.
    #[test]
    fn a_closed_pipe_is_no_error() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert!(completions(clap_complete::Shell::Zsh, cmd(), &mut Closed).is_ok());
    }
}
