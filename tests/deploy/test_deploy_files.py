"""``deploy/``: the container, compose and Kubernetes files are valid, checked offline (no daemon).

* The kustomize base and the GPU overlay are rendered by a small pure-Python renderer (the subset of
  kustomize they use: ``resources``, ``namespace``, ``labels``, ``images``, strategic-merge ``patches``);
  where ``kubectl`` exists its ``kubectl kustomize`` output must be the same objects.
* Every rendered manifest validates against the Kubernetes OpenAPI schemas of ``kubernetes-validate``
  (strict: unknown fields fail).
* ``deploy/compose.yaml`` validates against the compose-spec JSON schema that ``check-jsonschema`` ships.
* ``deploy/Dockerfile`` is parsed with ``dockerfile-parse`` and its structure checked: multi-stage,
  llama-cpp-python built with the AMX flags of ``deploy/ensure_llama_cpp.sh``, the model checked at build
  time, a non-root user in the final stage.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

DEPLOY = Path(__file__).parents[2] / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.33.0"
TEAMS = ("inference", "compression", "storage", "analysis", "synthesis")


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge of ``patch`` into ``base``: maps merge, lists of named items merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in patch)
    ):
        out_list = list(base)
        for item in patch:
            i = next(
                (n for n, b in enumerate(out_list) if isinstance(b, dict) and b.get("name") == item["name"]),
                None,
            )
            if i is None:
                out_list.append(item)
            else:
                out_list[i] = _merge(out_list[i], item)
        return out_list
    return patch


def _set_labels(doc: dict[str, Any], pairs: dict[str, str], *, templates: bool) -> None:
    doc.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    template = doc.get("spec", {}).get("template")
    if templates and isinstance(template, dict):  # `includeTemplates`: pod templates too (not selectors)
        template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _set_images(doc: dict[str, Any], images: list[dict[str, str]]) -> None:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    for c in [*pod.get("containers", []), *pod.get("initContainers", [])]:
        name, _, tag = c["image"].partition(":")
        for img in images:
            if img["name"] == name:
                c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag)}".rstrip(":")


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize directory`` would print (for the subset of kustomize used here)."""
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for res in k.get("resources", []):
        path = directory / res
        if path.is_dir():
            docs.extend(render(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for p in k.get("patches", []):
        patch = yaml.safe_load((directory / p["path"]).read_text())
        for i, d in enumerate(docs):
            if (d["kind"], d["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"]):
                docs[i] = _merge(d, patch)
    for d in docs:
        if "namespace" in k and d["kind"] != "Namespace":
            d["metadata"]["namespace"] = k["namespace"]
        for entry in k.get("labels", []):
            _set_labels(d, entry["pairs"], templates=bool(entry.get("includeTemplates")))
        _set_images(d, k.get("images", []))
    return docs


def _key(d: dict[str, Any]) -> tuple[str, str]:
    return d["kind"], d["metadata"]["name"]


@pytest.fixture(scope="module", params=["base", "overlays/gpu"])
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(K8S / request.param)


def test_kustomize_renders_every_team_with_autoscaler_and_disruption_budget(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = rendered
    kinds = {_key(d) for d in docs}
    for name in ("api", *TEAMS):
        assert {
            ("Deployment", name),
            ("HorizontalPodAutoscaler", name),
            ("PodDisruptionBudget", name),
        } <= kinds
    assert ("Service", "neurectomy-api") in kinds
    by = {_key(d): d for d in docs}
    api = by["Deployment", "api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["args"][:3] == ["serve", "--teams", "none"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/health"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    for name in ("api", *TEAMS):
        pod = by["Deployment", name]["spec"]["template"]["spec"]
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["NEURECTOMY_VAULT_KEK"]["valueFrom"]["secretKeyRef"] == {
            "name": "neurectomy",
            "key": "vault-kek",
        }
        assert pod["securityContext"]["runAsNonRoot"] is True
    config = by["ConfigMap", "neurectomy"]["data"]
    assert config["NEURECTOMY_NATS__STREAM_REPLICAS"] == "3"
    assert len(config["NEURECTOMY_NATS__URL"].split(",")) == 3
    assert all(d["metadata"].get("namespace") == "neurectomy" for d in docs if d["kind"] != "Namespace")


def test_gpu_overlay_places_only_the_storage_team_on_gpu_nodes() -> None:
    by = {_key(d): d for d in render(K8S / "overlays/gpu")}
    storage = by["Deployment", "storage"]["spec"]["template"]["spec"]
    assert storage["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert storage["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert storage["containers"][0]["resources"]["limits"]["memory"] == "1536Mi"  # merged, not replaced
    assert "nodeSelector" not in by["Deployment", "analysis"]["spec"]["template"]["spec"]


def test_every_manifest_validates_against_the_kubernetes_schemas(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = rendered
    for d in docs:
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)  # raises ValidationError naming the field
    broken = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):  # the validator can fail
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


@pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl is not installed (the pure-Python render is)"
)
def test_pure_python_render_matches_kubectl_kustomize(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = rendered
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / name)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    theirs = {_key(d): d for d in yaml.safe_load_all(out) if d}
    assert {_key(d): d for d in docs} == theirs


def test_compose_file_validates_against_the_compose_spec() -> None:
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []
    services = doc["services"]
    nats = [s for s in services if s.startswith("nats-")]
    assert len(nats) == 3 and all("--jetstream" in services[s]["command"] for s in nats)
    apis = [s for s in services.values() if s.get("command", [])[:3] == ["serve", "--teams", "none"]]
    assert len(apis) == 2
    assert {t for t in TEAMS if services[t]["command"][:3] == ["agent", "--team", t]} == set(TEAMS)
    assert all(s["environment"]["NEURECTOMY_NATS__STREAM_REPLICAS"] == "3" for s in apis)
    broken = {**doc, "services": {"x": {"image": 1, "restart": "sometimes"}}}
    assert list(validator.iter_errors(broken))  # the schema can fail


def test_dockerfile_is_multi_stage_builds_llama_cpp_without_amx_and_runs_as_non_root() -> None:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    instructions = parser.structure
    froms = [i for i in instructions if i["instruction"] == "FROM"]
    assert len(froms) >= 2 and " AS " in froms[0]["value"].upper()
    final = instructions[instructions.index(froms[-1]) :]
    script = (DEPLOY / "ensure_llama_cpp.sh").read_text()
    assert "-DGGML_AMX_TILE=OFF" in script and "-DGGML_AMX_INT8=OFF" in script
    runs = " ".join(i["value"] for i in instructions if i["instruction"] == "RUN")
    assert "deploy/ensure_llama_cpp.sh" in runs and "ryot.selfcheck" in runs  # model baked in, checked
    assert any(i["instruction"] == "COPY" and "--from=build" in i["value"] for i in final)
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(i["instruction"] == "HEALTHCHECK" and "/health" in i["value"] for i in final)
    copied = {
        i["value"].split()[0]
        for i in instructions
        if i["instruction"] == "COPY" and "--from" not in i["value"]
    }
    for path in copied:  # every COPY source exists in the build context (the repository root)
        assert (DEPLOY.parent / path).exists(), path
