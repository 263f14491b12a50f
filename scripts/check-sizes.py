#!/usr/bin/env python3
"""Lists Rust source files and functions that outgrew their rooms (issue 17, docs/architecture.md).

- a source file with more than MAX_FILE_LINES lines of non-test code;
- a function with more than MAX_FN_LINES lines, outside tests.

Tests are left out: the files under `tests/` folders (crates' and the workspace's integration
tests, `crates/testkit` is code and counts) and `#[cfg(test)]` modules inside source files. A
function that is right as it is stays listed unless the line above it (or above its
attributes and doc comment) is a comment `// size: <why>`.

Offenders already known when the check came in are listed in `scripts/check-sizes.todo`
(`path` for a file, `path::fn` for a function): they are printed as a reminder, not failed
on, and an entry that is no longer over the limit must leave the list. Anything else over a
limit makes the check exit 1, so `make lint` fails on it. `--all` prints the sizes of the
largest files and functions too, for planning.
"""

import re
import subprocess
import sys
from pathlib import Path

MAX_FILE_LINES = 600
MAX_FN_LINES = 80
ROOT = Path(__file__).resolve().parent.parent

FN_RE = re.compile(
    r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)"
)
CFG_TEST_RE = re.compile(r"^\s*#\[cfg\((test|all\(test.*)\)\]\s*$")


TEST_MOD_RE = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;")


def test_module_files(files):
    """Files that are `#[cfg(test)] mod name;` of another file: tests too."""
    tests = set()
    for path in files:
        text = (ROOT / path).read_text(encoding="utf-8")
        base = path.parent if path.name in ("lib.rs", "main.rs", "mod.rs") else path.with_suffix("")
        for m in TEST_MOD_RE.finditer(text):
            tests.add(base / f"{m.group(1)}.rs")
            tests.add(base / m.group(1) / "mod.rs")
    return tests


def rust_files():
    files = list(all_rust_files())
    tests = test_module_files(files)
    return [f for f in files if f not in tests]


def all_rust_files():
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "*.rs"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in sorted(set(out)):
        path = Path(name)
        parts = path.parts
        if "tests" in parts or parts[0] in ("fuzz", "target") or "benches" in parts:
            continue
        if (ROOT / path).exists():
            yield path


def strip_line(line, state):
    """The line without comments, strings and chars, so braces count right. `state` carries
    an open block comment or raw string across lines."""
    out = []
    i = 0
    n = len(line)
    while i < n:
        if state["block"]:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out)
            state["block"] = False
            i = end + 2
            continue
        if state["raw"] is not None:
            end = line.find(state["raw"], i)
            if end < 0:
                return "".join(out)
            i = end + len(state["raw"])
            state["raw"] = None
            continue
        if state["str"]:
            while i < n:
                if line[i] == "\\":
                    i += 2
                    continue
                if line[i] == '"':
                    state["str"] = False
                    i += 1
                    break
                i += 1
            continue
        c = line[i]
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            state["block"] = True
            i += 2
            continue
        m = re.match(r'b?r(#*)"', line[i:])
        if m and (i == 0 or not (line[i - 1].isalnum() or line[i - 1] == "_")):
            state["raw"] = '"' + m.group(1)
            i += m.end()
            continue
        if c == '"':
            state["str"] = True
            i += 1
            continue
        if c == "'":
            # A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", line[i:])
            if m:
                i += m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out)


def scan(path):
    """(non-test line count, [(name, start line, lines, waived)])."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    state = {"block": False, "raw": None, "str": False}
    depth = 0  # braces
    parens = 0  # parentheses and brackets, so `[u8; 4]` in a signature is no declaration's end
    test_until = None  # brace depth at which the #[cfg(test)] item ends
    pending_test = False
    pending_fn = None  # (name, line index, brace depth) of a signature not yet opened
    open_fns = []  # (name, line index, brace depth outside the body, waived)
    fns = []
    test_lines = 0
    for idx, raw in enumerate(lines):
        c = strip_line(raw, state)
        counted_test = test_until is not None
        if counted_test:
            test_lines += 1
        if test_until is None and CFG_TEST_RE.match(raw):
            pending_test = True
            continue
        m = FN_RE.match(c)
        if m and test_until is None and not pending_test:
            pending_fn = (m.group(7), idx, depth)
        for ch in c:
            if ch in "([":
                parens += 1
            elif ch in ")]":
                parens -= 1
            elif ch == ";" and parens == 0:
                if pending_fn and pending_fn[2] == depth:
                    pending_fn = None  # a declaration without a body
                if pending_test and depth == 0 or (pending_test and test_until is None):
                    pending_test = False  # `#[cfg(test)] mod tests;` or a `use`
            elif ch == "{":
                if pending_test and test_until is None:
                    test_until = depth
                    pending_test = False
                    if not counted_test:
                        test_lines += 1
                        counted_test = True
                if pending_fn and pending_fn[2] == depth:
                    name, start, d = pending_fn
                    open_fns.append((name, start, d, waived(lines, start)))
                    pending_fn = None
                depth += 1
            elif ch == "}":
                depth -= 1
                if open_fns and open_fns[-1][2] == depth:
                    name, start, _, w = open_fns.pop()
                    fns.append((name, start + 1, idx - start + 1, w))
                if test_until is not None and depth == test_until:
                    test_until = None
    return len(lines) - test_lines, fns


def waived(lines, idx):
    """Whether a `// size:` comment sits above the function, past its attributes and docs."""
    j = idx - 1
    while j >= 0:
        s = lines[j].strip()
        if s.startswith("// size:"):
            return True
        if s.startswith("///") or s.startswith("#[") or s.startswith("//") or s == "":
            if s == "":
                return False
            j -= 1
            continue
        return False
    return False


def known_offenders():
    """The entries of scripts/check-sizes.todo."""
    todo = ROOT / "scripts" / "check-sizes.todo"
    if not todo.exists():
        return set()
    lines = todo.read_text(encoding="utf-8").splitlines()
    return {l.strip() for l in lines if l.strip() and not l.lstrip().startswith("#")}


def main():
    show_all = "--all" in sys.argv
    known = known_offenders()
    offenders = []  # (key for the todo list, message)
    sizes = []
    fn_sizes = []
    for path in rust_files():
        n, fns = scan(path)
        sizes.append((n, str(path)))
        if n > MAX_FILE_LINES:
            offenders.append(
                (str(path), f"{path}: {n} lines of non-test code (limit {MAX_FILE_LINES}): split it by job")
            )
        for name, start, length, w in fns:
            fn_sizes.append((length, f"{path}:{start} {name}"))
            if length > MAX_FN_LINES and not w:
                offenders.append(
                    (
                        f"{path}::{name}",
                        f"{path}:{start}: fn {name} has {length} lines (limit {MAX_FN_LINES}): "
                        "split it, or say why it is right in a `// size: ...` comment above it",
                    )
                )
    if show_all:
        for n, p in sorted(sizes)[-15:]:
            print(f"{n:6}  {p}")
        for n, p in sorted(fn_sizes)[-25:]:
            print(f"{n:6}  {p}")
    new = [m for key, m in offenders if key not in known]
    reminders = [m for key, m in offenders if key in known]
    gone = sorted(known - {key for key, _ in offenders})
    for m in reminders:
        print(f"known (scripts/check-sizes.todo): {m}")
    for m in new:
        print(m)
    for key in gone:
        print(f"{key}: within the limits now; remove it from scripts/check-sizes.todo")
    if new or gone:
        print(
            f"check-sizes: {len(new)} new over the limits, {len(gone)} stale todo entries",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
