#!/usr/bin/env python3
"""Turns a CustomResourceDefinition into a strict JSON Schema for one of its versions.

Used to make the schemas in deploy/schemas/ (KEDA ScaledObject and TriggerAuthentication,
Prometheus Operator ServiceMonitor) from the projects' own CRD files, the way kubeconform's
openapi2jsonschema does:

- the version's `openAPIV3Schema` is the schema; `apiVersion` and `kind` are pinned to the CRD's;
- every object that lists `properties` and says nothing about other keys gets
  `additionalProperties: false`, so a misspelt field fails instead of being ignored (the API
  server would prune it silently);
- `x-kubernetes-int-or-string` becomes "integer or string", `nullable` allows null,
  `x-kubernetes-preserve-unknown-fields` leaves the object open; other `x-kubernetes-*` keys go.

    scripts/crd-to-jsonschema.py CRD.yaml VERSION SOURCE > deploy/schemas/NAME.json

SOURCE is recorded in the schema's `$comment` (where the CRD came from, at which tag).
Needs PyYAML.
"""

import json
import sys

import yaml


def convert(node):
    if isinstance(node, list):
        return [convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        out[key] = convert(value)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **out}
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if node.get("nullable"):
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: crd-to-jsonschema.py CRD.yaml VERSION SOURCE")
    path, version, source = sys.argv[1:]
    with open(path, encoding="utf-8") as f:
        crd = next(d for d in yaml.safe_load_all(f) if d)
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    served = [v for v in crd["spec"]["versions"] if v["name"] == version]
    if not served:
        names = ", ".join(v["name"] for v in crd["spec"]["versions"])
        sys.exit(f"{path}: no version {version!r} in this CRD (it has {names})")
    schema = convert(served[0]["schema"]["openAPIV3Schema"])
    schema.setdefault("properties", {})
    schema["properties"]["apiVersion"] = {"type": "string", "enum": [f"{group}/{version}"]}
    schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    schema["properties"]["metadata"] = {"type": "object"}
    result = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$comment": f"{kind} {group}/{version}, converted by scripts/crd-to-jsonschema.py from {source}",
        **schema,
    }
    json.dump(result, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
