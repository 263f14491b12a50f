#!/usr/bin/env python3
"""Checks that the dashboard and the alert rules only use metrics Hookline exports.

Every PromQL expression of the Grafana dashboard(s) and the Prometheus rule file(s) is parsed
(PyPI `promql-parser`), and every metric it selects must be registered in
crates/telemetry/src/metrics.rs:

- the name exists (a histogram only as `<name>_bucket`, `_sum` or `_count`);
- every label a selector matches on, and every label of a `by (...)`, `without (...)`,
  `on (...)`, `ignoring (...)` or `group_left/right (...)`, is one the metric is registered with,
  one Prometheus attaches to every target (job, instance, namespace, pod, ...), or `le` on a
  histogram bucket.

A few metrics come from elsewhere on purpose and are listed in EXTERNAL below with their source.
Names of recording rules defined in the rule files count as known. With --runbooks, every alert
must carry a `runbook_url` whose `#anchor` is a heading of that Markdown file.

    scripts/check-metric-names.py --metrics crates/telemetry/src/metrics.rs \
        --rules deploy/prometheus/hookline-rules.yaml --dashboard deploy/grafana/hookline.json \
        --runbooks docs/operations.md

Exit status 1, with one line per problem and what to change, when anything does not match.
"""

import argparse
import difflib
import json
import re
import sys

import promql_parser
import yaml

# Labels Prometheus adds to every scraped series (target labels) or that the ServiceMonitor in
# deploy/kubernetes/monitoring/servicemonitor.yaml sets.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint", "component"}

# Metrics the files may use although Hookline does not export them, with where they come from.
EXTERNAL = {
    "up": ("Prometheus itself: 1 when the target's last scrape succeeded", set()),
    "kube_pod_container_status_ready": (
        "kube-state-metrics: whether a container's readiness probe passes",
        {"namespace", "pod", "container", "uid"},
    ),
}

# What the `process` feature of the prometheus crate registers (ProcessCollector).
PROCESS_METRICS = {
    "process_cpu_seconds_total": "counter",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_virtual_memory_max_bytes": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_start_time_seconds": "gauge",
    "process_threads": "gauge",
}

GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${__rate_interval}": "5m",
    "${__interval}": "1m",
    "${__range}": "1h",
}


class Metric:
    def __init__(self, name, kind, labels):
        self.name = name
        self.kind = kind  # counter, gauge, histogram or unknown
        self.labels = labels  # set, or None when the registration could not be read


def strip_comments(src):
    return re.sub(r"//[^\n]*", "", src)


def statement_around(src, pos):
    """The Rust statement containing `pos`: from the previous `;`, `{` or `}` to the next `;`
    outside string literals."""
    start = max(src.rfind(";", 0, pos), src.rfind("{\n", 0, pos), src.rfind("}\n", 0, pos)) + 1
    i, in_str = pos, False
    while i < len(src):
        c = src[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == ";":
            break
        i += 1
    return src[start:i]


def read_metrics(path):
    """Metric name -> Metric, from the constants and registrations of metrics.rs."""
    src = strip_comments(open(path, encoding="utf-8").read())
    consts = dict(re.findall(r'const\s+([A-Z][A-Z0-9_]*)\s*:\s*&str\s*=\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"', src))
    names = {v: k for k, v in consts.items()}
    for literal in re.findall(r'"(hookline_[a-z0-9_]+)"', src):
        names.setdefault(literal, None)
    # Helpers that register a metric of one kind: `let gauge = |name, help, labels| { ... }`
    # closures and `fn counter(...) -> IntCounterVec` functions.
    helpers = {}
    for m in re.finditer(r"let\s+([a-z_][a-z0-9_]*)\s*=\s*(?:move\s*)?\|[^|]*\|", src):
        rest = src[m.end() :].lstrip()
        if rest.startswith("{"):
            depth, end = 0, len(rest)
            for i, c in enumerate(rest):
                depth += c == "{"
                depth -= c == "}"
                if depth == 0:
                    end = i + 1
                    break
            body = rest[:end]
        else:
            body = rest[: rest.find(";")]
        for kind in ("Histogram", "Gauge", "Counter"):
            if kind in body:
                helpers[m.group(1)] = kind.lower()
                break
    for m in re.finditer(r"fn\s+([a-z_][a-z0-9_]*)\s*(?:<[^>]*>)?\([^)]*\)\s*->\s*([A-Za-z0-9_:<>]+)", src):
        for kind in ("Histogram", "Gauge", "Counter"):
            if kind in m.group(2):
                helpers[m.group(1)] = kind.lower()
                break

    metrics = {}
    for name, const in names.items():
        kind, labels = "unknown", None
        needles = [re.escape(f'"{name}"')]
        if const:
            needles.append(r"(?<![A-Za-z0-9_])" + re.escape(const) + r"(?![A-Za-z0-9_])")
        for m in re.finditer("|".join(needles), src):
            stmt = statement_around(src, m.start())
            if re.search(r"const\s+" + re.escape(const or "\0") + r"\b", stmt) or "pub const" in stmt:
                continue
            called = [h for h in helpers if re.search(r"(?<![A-Za-z0-9_.])" + h + r"\s*\(", stmt)]
            if "Histogram" in stmt:
                kind = "histogram"
            elif "Gauge" in stmt:
                kind = "gauge"
            elif "Counter" in stmt:
                kind = "counter"
            elif called:
                kind = helpers[called[0]]
            else:
                continue
            after = stmt[stmt.find(m.group(0)) :] if m.group(0) in stmt else stmt
            arrays = re.findall(r'&\[((?:\s*"[^"]*"\s*,?)*)\s*\]', after)
            if arrays:
                labels = set(re.findall(r'"([^"]*)"', arrays[0]))
            elif "Vec" not in stmt:
                labels = set()
            labels_const = set(re.findall(r'const_label\(\s*"([^"]+)"', stmt))
            if labels is not None:
                labels |= labels_const
            break
        metrics[name] = Metric(name, kind, labels)
    if "ProcessCollector" in src:
        for name, kind in PROCESS_METRICS.items():
            metrics.setdefault(name, Metric(name, kind, set()))
    return metrics


def anchors(markdown_path):
    """GitHub's anchors of the Markdown file's headings."""
    out = set()
    for line in open(markdown_path, encoding="utf-8"):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            text = re.sub(r"`", "", m.group(1)).strip().lower()
            slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
            out.add(slug)
    return out


class Checker:
    def __init__(self, metrics, recorded):
        self.metrics = metrics
        self.recorded = recorded
        self.problems = []

    def problem(self, where, text):
        self.problems.append(f"{where}: {text}")

    def suggest(self, name):
        known = list(self.metrics) + list(EXTERNAL) + list(self.recorded)
        close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
        return f" (did you mean {' or '.join(close)}?)" if close else ""

    def resolve(self, selector):
        """(name to report, Metric or None, allowed labels or None) for a vector selector."""
        name = selector.name
        if not name:
            for matcher in selector.matchers.matchers:
                if matcher.name == "__name__" and str(matcher.op).endswith("Equal") and "Not" not in str(matcher.op):
                    name = matcher.value
        return name

    def labels_of(self, name, where):
        """The labels a series of `name` can carry, or None (unknown: no label check)."""
        if name in self.recorded:
            return None
        if name in EXTERNAL:
            return EXTERNAL[name][1] | TARGET_LABELS
        if name in self.metrics:
            m = self.metrics[name]
            if m.kind == "histogram":
                self.problem(
                    where,
                    f"{name} is a histogram: select {name}_bucket, {name}_sum or {name}_count",
                )
                return None
            return None if m.labels is None else m.labels | TARGET_LABELS
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)] if name.endswith(suffix) else None
            if base and base in self.metrics and self.metrics[base].kind == "unknown":
                self.problem(
                    where,
                    f"{name}: cannot tell from metrics.rs whether {base} is a histogram (its "
                    "registration has a form scripts/check-metric-names.py does not read); teach "
                    "read_metrics() that form",
                )
                return None
            if base and base in self.metrics and self.metrics[base].kind == "histogram":
                labels = self.metrics[base].labels
                if labels is None:
                    return None
                return labels | TARGET_LABELS | ({"le"} if suffix == "_bucket" else set())
        self.problem(
            where,
            f"metric {name!r} is not exported by Hookline (crates/telemetry/src/metrics.rs)"
            f"{self.suggest(name)}; use a registered name, or register it there first",
        )
        return None

    def walk(self, node, where):
        """Checks the expression; returns the labels its result may carry (None: unknown)."""
        kind = type(node).__name__
        if kind == "VectorSelector":
            name = self.resolve(node)
            if not name:
                self.problem(where, f"selector {node} has no metric name; name the metric")
                return None
            labels = self.labels_of(name, where)
            if labels is not None:
                for matcher in node.matchers.matchers:
                    if matcher.name != "__name__" and matcher.name not in labels:
                        self.problem(
                            where,
                            f"{name} has no label {matcher.name!r} (it has: "
                            f"{', '.join(sorted(labels - TARGET_LABELS)) or 'none of its own'})",
                        )
            return labels
        if kind == "MatrixSelector":
            return self.walk(node.vector_selector, where)
        if kind in ("ParenExpr", "UnaryExpr", "SubqueryExpr"):
            return self.walk(node.expr, where)
        if kind == "Call":
            results = [self.walk(arg, where) for arg in node.args]
            if node.func.name in ("label_replace", "label_join"):
                return None
            if node.func.name in ("absent", "absent_over_time", "vector", "time", "scalar"):
                return None
            vectors = [r for r in results if r is not None]
            if any(r is None for r, a in zip(results, node.args) if type(a).__name__ not in ("NumberLiteral", "StringLiteral")):
                return None
            return set().union(*vectors) if vectors else set()
        if kind == "AggregateExpr":
            inner = self.walk(node.expr, where)
            if node.param is not None:
                self.walk(node.param, where)
            modifier = node.modifier
            if modifier is not None and inner is not None:
                for label in modifier.labels:
                    if label not in inner:
                        self.problem(
                            where,
                            f"{node.op} {str(modifier.type).split('.')[-1].lower()} ({label}): "
                            f"no series inside carries the label {label!r}",
                        )
            if modifier is None:
                return set()
            if str(modifier.type).endswith("By"):
                return set(modifier.labels)
            return inner
        if kind == "BinaryExpr":
            left = self.walk(node.lhs, where)
            right = self.walk(node.rhs, where)
            both = None if left is None or right is None else left | right
            modifier = node.modifier
            if modifier is not None and both is not None:
                listed = []
                if modifier.matching is not None:
                    listed += list(modifier.matching.labels)
                listed += list(modifier.group_labels or [])
                for label in listed:
                    if label not in both:
                        self.problem(where, f"on/ignoring/group ({label}): neither side carries the label {label!r}")
            if left is None or right is None:
                return None
            return left if type(node.lhs).__name__ != "NumberLiteral" else right
        return set()  # literals

    def check(self, expr, where):
        text = expr
        for variable, value in GRAFANA_VARIABLES.items():
            text = text.replace(variable, value)
        try:
            tree = promql_parser.parse(text)
        except Exception as e:  # the parser raises ValueError with the position
            self.problem(where, f"does not parse as PromQL: {e}")
            return
        self.walk(tree, where)


def dashboard_exprs(path):
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    out = []

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f"{path}: panel {p.get('title')!r} ({t.get('refId')})", t["expr"], None))
    for var in dash.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") == "query" and isinstance(query, str):
            m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", query)
            if m:
                out.append((f"{path}: variable {var.get('name')!r}", m.group(1), m.group(2)))
            else:
                out.append((f"{path}: variable {var.get('name')!r}", query, None))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--metrics", required=True, help="crates/telemetry/src/metrics.rs")
    ap.add_argument("--rules", action="append", default=[], help="Prometheus rule file (repeatable)")
    ap.add_argument("--dashboard", action="append", default=[], help="Grafana dashboard JSON (repeatable)")
    ap.add_argument("--runbooks", help="Markdown file every alert's runbook_url must point into")
    args = ap.parse_args()

    metrics = read_metrics(args.metrics)
    if not metrics:
        sys.exit(f"{args.metrics}: found no metric names; has the file moved or changed its form?")

    rule_docs = []
    recorded = set()
    for path in args.rules:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        rule_docs.append((path, doc))
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                if "record" in rule:
                    recorded.add(rule["record"])

    checker = Checker(metrics, recorded)
    runbook_anchors = None
    if args.runbooks:
        try:
            runbook_anchors = anchors(args.runbooks)
        except OSError as e:
            checker.problem(args.runbooks, f"cannot read the runbooks: {e.strerror}; the alerts' runbook_url point into it")
            runbook_anchors = set()
    exprs = 0
    for path, doc in rule_docs:
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                name = rule.get("alert") or rule.get("record")
                where = f"{path}: {'alert' if 'alert' in rule else 'record'} {name}"
                checker.check(rule.get("expr", ""), where)
                exprs += 1
                if "alert" in rule and runbook_anchors is not None:
                    url = (rule.get("annotations") or {}).get("runbook_url", "")
                    anchor = url.split("#", 1)[1] if "#" in url else ""
                    if not url:
                        checker.problem(where, "has no runbook_url annotation; add one pointing at its section of " + args.runbooks)
                    elif args.runbooks.split("/")[-1] not in url.split("#", 1)[0]:
                        checker.problem(where, f"runbook_url {url} does not point into {args.runbooks}")
                    elif anchor not in runbook_anchors:
                        checker.problem(
                            where,
                            f"runbook_url anchor #{anchor} is no heading of {args.runbooks}; "
                            f"add a heading `### {name}` there (anchor #{name.lower()})",
                        )
    for path in args.dashboard:
        for where, expr, label in dashboard_exprs(path):
            checker.check(expr, where)
            exprs += 1
            if label:
                tree = promql_parser.parse(expr)
                if type(tree).__name__ == "VectorSelector":
                    labels = checker.labels_of(checker.resolve(tree), where)
                    if labels is not None and label not in labels:
                        checker.problem(where, f"label_values(..., {label}): the series carry no label {label!r}")

    if checker.problems:
        print(f"check-metric-names: {len(checker.problems)} problem(s):", file=sys.stderr)
        for p in checker.problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(
        f"check-metric-names: {exprs} expressions use only metrics and labels of "
        f"{args.metrics} ({len(metrics)} metrics) or the listed external ones"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
