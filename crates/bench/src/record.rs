//! `--write FILE`: the run's report replaces the machine-written block of FILE
//! (`docs/benchmarks.md`), between [`BEGIN`] and [`END`], with the command that made it. The
//! prose around the block (what the numbers mean) stays as people wrote it; a file without
//! the markers gets the block appended.

use std::path::Path;

use anyhow::Context;

pub const BEGIN: &str =
    "<!-- hookline-bench:begin (written by `hookline-bench --write`; do not edit by hand) -->";
pub const END: &str = "<!-- hookline-bench:end -->";

/// Replaces the block in `file` with `report`, made by `command`.
pub fn write(file: &Path, command: &str, report: &str) -> anyhow::Result<()> {
    let doc = std::fs::read_to_string(file)
        .with_context(|| format!("reading {} to record the run in it", file.display()))?;
    std::fs::write(file, splice(&doc, command, report))
        .with_context(|| format!("writing the run into {}", file.display()))
}

fn block(command: &str, report: &str) -> String {
    format!(
        "{BEGIN}\n\nThe latest run, recorded by `{command}` (the first line says when and the second on what):\n\n```\n{}\n```\n\n{END}",
        report.trim_end()
    )
}

fn splice(doc: &str, command: &str, report: &str) -> String {
    let new = block(command, report);
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{new}{}", &doc[..b], &doc[e + END.len()..]),
        _ => format!("{}\n\n{new}\n", doc.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_replaced_and_the_prose_around_it_kept() {
        let first = splice("# Benchmarks\n\nProse.\n", "make bench", "run one");
        assert!(first.starts_with("# Benchmarks\n\nProse.\n\n"));
        assert!(first.contains("run one") && first.contains("`make bench`"));
        let doc = format!("{first}\n## Later\n\nMore prose.\n");
        let second = splice(&doc, "make bench-full", "run two");
        assert!(second.contains("run two") && !second.contains("run one"));
        assert!(second.contains("## Later\n\nMore prose."));
        assert_eq!(second.matches(BEGIN).count(), 1);
    }
}
