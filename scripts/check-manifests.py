#!/usr/bin/env python3
"""Validates the deployment files against their schemas and against the code.

    scripts/check-manifests.py [--k8s-versions 1.30,1.37] [--kubectl PATH]

Run from the repository root (scripts/validate-deploy.sh does). Needs PyYAML, jsonschema and
kubernetes-validate (which ships the Kubernetes JSON schemas, so nothing is fetched).

Kubernetes (every YAML file under deploy/kubernetes/, applied or example):
  - built-in kinds against the Kubernetes schemas of each version given, strictly (unknown
    fields are errors);
  - KEDA ScaledObject / TriggerAuthentication and Prometheus Operator ServiceMonitor against the
    schemas vendored in deploy/schemas/ (see its README);
  - kustomizations: every resource and component they list exists; patch targets exist;
    with --kubectl, `kubectl kustomize` renders the core alone and the core with every
    component (autoscaling, monitoring), and the rendered objects are validated again;
  - every file is listed by a kustomization or says in its name that it is not applied
    (`*.example.yaml`, `*.template.yaml`).
Against the code, in Kubernetes and docker-compose.yml:
  - every HOOKLINE_* variable set is one a binary reads (KNOWN_ENV in crates/config/src/env.rs),
    HOOKLINE_KAFKA_* aside;
  - every command runs a binary the image has (the Dockerfile's list), and its --flags exist in
    the code;
  - the join stages (tracking, profiles) get HOOKLINE_STATE_DIR on a writable volume that
    outlives the container (a PersistentVolumeClaim template, a named compose volume);
  - sender and admin see the RSA key, its `.ed25519.pem` and its `.keyring.json` where
    HOOKLINE_SIGNING_KEY points, and `.ed25519.keyring.json` (a Secret mounted whole, or with
    those four items);
  - Services' target ports exist on the pods they select; StatefulSets' governing Services exist;
  - each ScaledObject scales an existing workload on the right consumer groups and topics (from
    the topic prefix), with maxReplicaCount equal to the partition count of the topic Job, and
    only Kafka trigger keys KEDA 2.20 reads.

Exit status 1 with one line per problem when anything is off.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

K8S_DIR = "deploy/kubernetes"
SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "deploy/schemas/keda-scaledobject-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "deploy/schemas/keda-triggerauthentication-v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "deploy/schemas/prometheus-operator-servicemonitor-v1.json",
}
# Trigger metadata keys of KEDA v2.20.2's Kafka scaler (pkg/scalers/kafka_scaler.go, the
# `order=triggerMetadata` fields), and `<key>FromEnv` for those it also resolves from the
# workload's environment.
KAFKA_TRIGGER_KEYS = {
    "bootstrapServers", "consumerGroup", "topic", "partitionLimitation", "lagThreshold",
    "activationLagThreshold", "offsetResetPolicy", "allowIdleConsumers", "excludePersistentLag",
    "scaleToZeroOnInvalidOffset", "limitToPartitionsWithLag", "ensureEvenDistributionOfPartitions",
    "version", "tls", "unsafeSsl", "sasl", "saslTokenProvider", "awsRegion",
    "bootstrapServersFromEnv", "consumerGroupFromEnv", "topicFromEnv",
}
# What each scaled workload consumes: (consumer group suffix, topic suffix) after the prefix.
EXPECTED_GROUPS = {
    "hookline-tracking": {("tracking", "tracking")},
    "hookline-profiles": {("profiles", "profile-changes")},
    "hookline-sender": {("sender", "deliveries"), ("sender-retries", "retries")},
}
JOIN_STAGES = {"hookline-tracking", "hookline-profiles"}
KEY_USERS = {"hookline-sender", "hookline-admin"}


# Schema errors already reported, so that a rendered object repeats none of its file's.
REPORTED = set()


class Problems(list):
    def add(self, where, text):
        self.append(f"{where}: {text}")


def known_env():
    src = open("crates/config/src/env.rs", encoding="utf-8").read()
    block = re.search(r"KNOWN_ENV\s*:\s*&\[&str\]\s*=\s*&\[(.*?)\];", src, re.S)
    if not block:
        sys.exit("crates/config/src/env.rs: KNOWN_ENV not found; update scripts/check-manifests.py")
    return set(re.findall(r'"(HOOKLINE_[A-Z0-9_]+)"', block.group(1)))


def image_binaries():
    src = open("Dockerfile", encoding="utf-8").read()
    m = re.search(r"for bin in ([^;]+);", src)
    bins = set(m.group(1).split()) if m else set()
    if "deploy/keys-init.sh /usr/local/bin/hookline-keys-init" in src:
        bins.add("hookline-keys-init")
    return bins


def code_flags():
    """Long flags clap derives from struct fields (`pub foo_bar:` -> --foo-bar) or names."""
    flags = set()
    for path in glob.glob("crates/*/src/**/*.rs", recursive=True):
        src = open(path, encoding="utf-8").read()
        if "clap" not in src and "#[arg" not in src:
            continue
        flags |= {"--" + f.replace("_", "-") for f in re.findall(r"^\s*(?:pub\s+)?([a-z][a-z0-9_]*)\s*:", src, re.M)}
        flags |= {"--" + f for f in re.findall(r'long\s*=\s*"([a-z0-9-]+)"', src)}
    return flags


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def env_names(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def pod_spec(doc):
    spec = doc.get("spec", {})
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return spec.get("template", {}).get("spec", {})
    return None


def validate_schema(doc, where, versions, schemas, problems, reported=None):
    """One object against its vendored CRD schema, or the Kubernetes schemas of each version.
    The same error under several versions is reported once; `reported` (a set) suppresses
    errors already reported for the same object elsewhere (the file behind a rendered object)."""
    api, kind = doc.get("apiVersion", ""), doc.get("kind")
    name = (doc.get("metadata") or {}).get("name")
    found = {}  # message -> the schemas that gave it
    if (api, kind) in schemas:
        validator = jsonschema.Draft7Validator(schemas[(api, kind)])
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            at = ".".join(str(p) for p in err.absolute_path) or "(top)"
            found.setdefault(f"{at}: {err.message}", []).append(f"schema {SCHEMAS[(api, kind)]}")
    else:
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                at = ".".join(str(p) for p in err.path) or "(top)"
                found.setdefault(f"{at}: {err.message}", []).append(version)
            except kubernetes_validate.SchemaNotFoundError:
                problems.add(where, f"no schema for {api} {kind} in Kubernetes {version} (nor vendored in deploy/schemas)")
                return
    for message, sources in found.items():
        key = (kind, name, message)
        if reported is not None:
            if key in reported:
                continue
            reported.add(key)
        label = sources[0] if sources[0].startswith("schema ") else "Kubernetes " + ", ".join(sources) + " schema"
        problems.add(where, f"{message} ({label})")


def check_rendered(kubectl, versions, problems):
    """Renders the core kustomization alone and with every component, and validates the result."""
    schemas = {key: json.load(open(p, encoding="utf-8")) for key, p in SCHEMAS.items()}
    components = sorted(
        os.path.basename(os.path.dirname(p))
        for p in glob.glob(f"{K8S_DIR}/*/kustomization.yaml")
        if "kind: Component" in open(p, encoding="utf-8").read()
    )
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(K8S_DIR, os.path.join(tmp, "base"))
        os.mkdir(os.path.join(tmp, "all"))
        with open(os.path.join(tmp, "all", "kustomization.yaml"), "w", encoding="utf-8") as f:
            f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n")
            f.write("resources:\n  - ../base\ncomponents:\n")
            f.writelines(f"  - ../base/{c}\n" for c in components)
        for label, folder in (("the core", "base"), ("the core with " + ", ".join(components), "all")):
            run = subprocess.run([kubectl, "kustomize", os.path.join(tmp, folder)], capture_output=True, text=True)
            where = f"kubectl kustomize of {label}"
            if run.returncode != 0:
                problems.add(where, run.stderr.strip() or f"exit status {run.returncode}")
                continue
            docs = [d for d in yaml.safe_load_all(run.stdout) if d]
            for doc in docs:
                validate_schema(doc, f"{where}: {doc.get('kind')} {doc['metadata'].get('name')}", versions, schemas,
                                problems, REPORTED)
            # A workload KEDA scales must not set `replicas`, or every apply resets KEDA's choice.
            scaled = {(d["spec"]["scaleTargetRef"].get("kind", "Deployment"), d["spec"]["scaleTargetRef"]["name"])
                      for d in docs if d.get("kind") == "ScaledObject"}
            for doc in docs:
                if (doc.get("kind"), doc["metadata"].get("name")) in scaled and "replicas" in doc.get("spec", {}):
                    problems.add(f"{where}: {doc['kind']} {doc['metadata']['name']}",
                                 "is scaled by KEDA but still sets replicas; remove it in the autoscaling component")


def check_k8s(versions, problems):
    env_ok, bins, flags = known_env(), image_binaries(), code_flags()
    files = sorted(glob.glob(f"{K8S_DIR}/**/*.yaml", recursive=True))
    docs = []  # (file, doc)
    listed = set()
    kustomizations = []
    for path in files:
        try:
            for doc in load_docs(path):
                docs.append((path, doc))
        except yaml.YAMLError as e:
            problems.add(path, f"not valid YAML: {e}")
    schemas = {key: json.load(open(p, encoding="utf-8")) for key, p in SCHEMAS.items()}

    objects = {}
    for path, doc in docs:
        kind, api = doc.get("kind"), doc.get("apiVersion", "")
        name = (doc.get("metadata") or {}).get("name", "?")
        where = f"{path}: {kind} {name}"
        if kind in ("Kustomization", "Component") and api.startswith("kustomize.config.k8s.io/"):
            kustomizations.append((path, doc))
            continue
        objects.setdefault((kind, name), []).append((path, doc))
        validate_schema(doc, where, versions, schemas, problems, REPORTED)

    # Kustomizations and components: listed files exist; every file is listed or marked.
    for path, doc in kustomizations:
        base = os.path.dirname(path)
        for res in doc.get("resources", []) or []:
            target = os.path.normpath(os.path.join(base, res))
            if not os.path.exists(target):
                problems.add(path, f"resource {res} does not exist")
            listed.add(target)
        for comp in doc.get("components", []) or []:
            target = os.path.normpath(os.path.join(base, comp))
            if not os.path.exists(os.path.join(target, "kustomization.yaml")):
                problems.add(path, f"component {comp} has no kustomization.yaml")
        for patch in doc.get("patches", []) or []:
            t = patch.get("target", {})
            if (t.get("kind"), t.get("name")) not in objects:
                problems.add(path, f"patch target {t.get('kind')} {t.get('name')} is in no manifest")
        # Commented-out `components:` of the core kustomization must point at real components.
        for comp in re.findall(r"^#\s+-\s+([a-z0-9-]+)\s*$", open(path, encoding="utf-8").read(), re.M):
            if not os.path.exists(os.path.join(base, comp, "kustomization.yaml")):
                problems.add(path, f"the commented component {comp} does not exist")
    for path in files:
        if os.path.basename(path) == "kustomization.yaml" or path in listed:
            continue
        if not re.search(r"\.(example|template)\.yaml$", path):
            problems.add(path, "is listed by no kustomization.yaml; list it, or name it *.example.yaml / *.template.yaml")

    # Topic prefix and partitions, from the ConfigMap and the topic Job.
    prefix, partitions, config_env = "hookline.", None, {}
    for path, doc in objects.get(("ConfigMap", "hookline-config"), []):
        config_env = doc.get("data", {}) or {}
        prefix = config_env.get("HOOKLINE_TOPIC_PREFIX", prefix)
        for key in config_env:
            if key.startswith("HOOKLINE_") and not key.startswith("HOOKLINE_KAFKA_") and key not in env_ok:
                problems.add(f"{path}: ConfigMap hookline-config", f"{key} is no setting any binary reads (KNOWN_ENV)")
    for path, doc in objects.get(("Job", "hookline-topics"), []):
        cmd = doc["spec"]["template"]["spec"]["containers"][0]["command"]
        if "--partitions" in cmd:
            partitions = int(cmd[cmd.index("--partitions") + 1])

    secrets_made, secrets_used = set(), []
    for (kind, name), items in objects.items():
        for path, doc in items:
            spec = pod_spec(doc)
            if spec is None:
                continue
            where = f"{path}: {kind} {name}"
            for c in spec.get("initContainers", []) + spec.get("containers", []):
                cwhere = f"{where}, container {c['name']}"
                env = env_names(c)
                for key in env:
                    if key.startswith("HOOKLINE_") and not key.startswith("HOOKLINE_KAFKA_") and key not in env_ok:
                        problems.add(cwhere, f"{key} is no setting any binary reads (crates/config/src/env.rs, KNOWN_ENV)")
                cmd = c.get("command", [])
                if c.get("image") == "hookline":
                    if not cmd or cmd[0] not in bins | {"bash"}:
                        problems.add(cwhere, f"command {cmd[:1]} is not a binary of the image ({', '.join(sorted(bins))})")
                    elif cmd[0] != "bash" and cmd[0] != "hookline-keys-init":
                        for arg in cmd[1:]:
                            flag = arg.split("=", 1)[0]
                            if flag.startswith("--") and flag not in flags:
                                problems.add(cwhere, f"flag {flag} is defined by no binary")
                    script = " ".join(cmd)
                    secrets_made |= set(re.findall(r"--secret-json\s+([a-z0-9-]+)", script))
                mounts = {m["mountPath"].rstrip("/"): m for m in c.get("volumeMounts", [])}
                volumes = {v["name"]: v for v in spec.get("volumes", [])}
                claims = {t["metadata"]["name"] for t in doc.get("spec", {}).get("volumeClaimTemplates", [])}
                if name in JOIN_STAGES:
                    state = env.get("HOOKLINE_STATE_DIR") or config_env.get("HOOKLINE_STATE_DIR")
                    if not state:
                        problems.add(cwhere, "a join stage needs HOOKLINE_STATE_DIR on a persistent volume")
                    else:
                        mount = mounts.get(state.rstrip("/"))
                        if not mount or mount.get("readOnly"):
                            problems.add(cwhere, f"HOOKLINE_STATE_DIR {state} is not a writable volume mount")
                        elif mount["name"] not in claims:
                            problems.add(cwhere, f"HOOKLINE_STATE_DIR {state} is not on a volumeClaimTemplate (a restart would restore everything)")
                    if kind != "StatefulSet":
                        problems.add(where, "a join stage must be a StatefulSet (its table needs a volume per pod)")
                if name in KEY_USERS:
                    key = env.get("HOOKLINE_SIGNING_KEY")
                    if not key:
                        problems.add(cwhere, "HOOKLINE_SIGNING_KEY is not set")
                        continue
                    keydir, base = os.path.dirname(key), os.path.basename(key)
                    mount = mounts.get(keydir)
                    vol = volumes.get(mount["name"]) if mount else None
                    secret = (vol or {}).get("secret")
                    if not secret:
                        problems.add(cwhere, f"{keydir} (HOOKLINE_SIGNING_KEY's folder) is not a mounted Secret")
                        continue
                    if mount.get("subPath"):
                        problems.add(cwhere, f"{keydir} is mounted with subPath: rotated keys would never reach the pod")
                    items = secret.get("items")
                    if items is not None:
                        paths = {i["path"] for i in items}
                        for needed in (base, base + ".ed25519.pem", base + ".keyring.json",
                                       base + ".ed25519.keyring.json"):
                            if needed not in paths:
                                problems.add(cwhere, f"the Secret's items leave out {needed}; mount it without items:")
                    secrets_used.append((secret.get("secretName"), cwhere))
    for secret, where in secrets_used:
        if secret not in secrets_made:
            problems.add(where, f"no Job creates the Secret {secret} (keys-job.yaml: hookline-keys-init --secret-json {secret})")

    # Services: selected pods have the target port; StatefulSets have their Service.
    workloads = [(k, n, d) for (k, n), its in objects.items() for _, d in its if k in ("Deployment", "StatefulSet")]
    for (kind, name), items in objects.items():
        for path, doc in items:
            if kind == "Service":
                sel = doc["spec"].get("selector", {})
                pods = [d for _, _, d in workloads
                        if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
                if not pods:
                    problems.add(f"{path}: Service {name}", "selects no pods of these manifests")
                for port in doc["spec"].get("ports", []):
                    target = port.get("targetPort")
                    for d in pods:
                        names = {p.get("name") for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
                        nums = {p.get("containerPort") for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
                        if target not in names | nums:
                            problems.add(f"{path}: Service {name}", f"targetPort {target} is no port of {d['metadata']['name']}")
            if kind == "StatefulSet":
                svc = doc["spec"].get("serviceName")
                if ("Service", svc) not in objects:
                    problems.add(f"{path}: StatefulSet {name}", f"serviceName {svc} is no Service of these manifests")
            if kind == "ServiceMonitor":
                sel = doc["spec"]["selector"]
                ports = {e.get("port") for e in doc["spec"]["endpoints"]}
                for (k2, n2), its in objects.items():
                    if k2 != "Service":
                        continue
                    labels = its[0][1]["metadata"].get("labels", {})
                    match = all(labels.get(k) == v for k, v in sel.get("matchLabels", {}).items()) and all(
                        labels.get(e["key"]) in e["values"] for e in sel.get("matchExpressions", []) if e["operator"] == "In")
                    if match:
                        have = {p.get("name") for p in its[0][1]["spec"]["ports"]}
                        for p in ports - have:
                            problems.add(f"{path}: ServiceMonitor {name}", f"Service {n2} has no port {p}")
            if kind == "ScaledObject":
                where = f"{path}: ScaledObject {name}"
                spec = doc["spec"]
                ref = spec["scaleTargetRef"]
                if (ref.get("kind", "Deployment"), ref["name"]) not in objects:
                    problems.add(where, f"scales {ref.get('kind')} {ref['name']}, which is in no manifest")
                if partitions is not None and spec.get("maxReplicaCount") != partitions:
                    problems.add(where, f"maxReplicaCount {spec.get('maxReplicaCount')} is not the topics' partition count {partitions} (topics-job.yaml)")
                found = set()
                for trig in spec.get("triggers", []):
                    if trig.get("type") != "kafka":
                        continue
                    md = trig.get("metadata", {})
                    for key in md:
                        if key not in KAFKA_TRIGGER_KEYS:
                            problems.add(where, f"trigger {trig.get('name')}: KEDA's Kafka scaler reads no metadata key {key!r}")
                    env_key = md.get("bootstrapServersFromEnv")
                    if env_key and env_key not in config_env:
                        problems.add(where, f"bootstrapServersFromEnv {env_key} is not set in hookline-config")
                    found.add((md.get("consumerGroup"), md.get("topic")))
                expected = {(prefix + g, prefix + t) for g, t in EXPECTED_GROUPS.get(ref["name"], set())}
                if expected and found != expected:
                    problems.add(where, f"consumer groups/topics {sorted(found)}; the code uses {sorted(expected)} with prefix {prefix!r}")


def check_compose(problems):
    env_ok, bins, flags = known_env(), image_binaries(), code_flags()
    path = "docker-compose.yml"
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    volumes = set((doc.get("volumes") or {}).keys())
    key_writers, key_readers = set(), []
    for name, svc in (doc.get("services") or {}).items():
        where = f"{path}: service {name}"
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
        for key in env:
            if key.startswith("HOOKLINE_") and not key.startswith("HOOKLINE_KAFKA_") and key not in env_ok:
                problems.add(where, f"{key} is no setting any binary reads (crates/config/src/env.rs, KNOWN_ENV)")
        cmd = svc.get("command") or []
        if isinstance(cmd, str):
            cmd = cmd.split()
        if not str(svc.get("image", "")).startswith("${HOOKLINE_IMAGE") or not cmd:
            continue
        if cmd[0] not in bins:
            problems.add(where, f"command {cmd[0]} is not a binary of the image ({', '.join(sorted(bins))})")
        elif cmd[0] != "hookline-keys-init":
            for arg in cmd[1:]:
                flag = arg.split("=", 1)[0]
                if flag.startswith("--") and flag not in flags:
                    problems.add(where, f"flag {flag} is defined by no binary")
        mounts = {}
        for v in svc.get("volumes") or []:
            parts = v.split(":") if isinstance(v, str) else [v.get("source"), v.get("target"), "ro" if v.get("read_only") else "rw"]
            mounts[parts[1].rstrip("/")] = (parts[0], len(parts) > 2 and "ro" in parts[2].split(","))
        if cmd[0] in ("hookline-tracking", "hookline-profiles"):
            state = env.get("HOOKLINE_STATE_DIR")
            if not state:
                problems.add(where, "a join stage needs HOOKLINE_STATE_DIR on a named volume")
            elif state.rstrip("/") not in mounts or mounts[state.rstrip("/")][1]:
                problems.add(where, f"HOOKLINE_STATE_DIR {state} is not a writable volume mount")
            elif mounts[state.rstrip("/")][0] not in volumes:
                problems.add(where, f"HOOKLINE_STATE_DIR {state} is not on a named volume")
            if not svc.get("read_only"):
                problems.add(where, "read_only: true went missing")
        if cmd[0] in ("hookline-sender", "hookline-admin", "hookline-keys-init"):
            key = env.get("HOOKLINE_SIGNING_KEY")
            if not key or os.path.dirname(key) not in mounts:
                problems.add(where, "HOOKLINE_SIGNING_KEY must point into the mounted signing-key volume")
                continue
            source, read_only = mounts[os.path.dirname(key)]
            if cmd[0] == "hookline-keys-init":
                key_writers.add(source)
            else:
                key_readers.append((source, where))
                if not read_only:
                    problems.add(where, f"mount the key volume {source} read-only: only the key service writes keys")
    for source, where in key_readers:
        if source not in key_writers:
            problems.add(where, f"no one-shot service runs hookline-keys-init on the volume {source}, so its "
                         "Ed25519 key (<key>.ed25519.pem) is never written")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k8s-versions", default="1.30,1.37",
                    help="Kubernetes versions to validate against (default: 1.30,1.37)")
    ap.add_argument("--kubectl", help="a kubectl to render the kustomizations with (kubectl kustomize)")
    args = ap.parse_args()
    problems = Problems()
    versions = [v.strip() for v in args.k8s_versions.split(",") if v.strip()]
    check_k8s(versions, problems)
    if args.kubectl:
        check_rendered(args.kubectl, versions, problems)
    check_compose(problems)
    if problems:
        print(f"check-manifests: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    rendered = ", also as rendered by kubectl kustomize with and without components" if args.kubectl else ""
    print(f"check-manifests: deploy/kubernetes (Kubernetes {args.k8s_versions}, KEDA and ServiceMonitor schemas"
          f"{rendered}) and docker-compose.yml agree with the schemas and the code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
