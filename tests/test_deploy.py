"""deploy/kubernetes/ validated offline against the Kubernetes schemas, and what it promises checked."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from zarrdav.config import load_settings

kubernetes_validate = pytest.importorskip("kubernetes_validate")

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30"


def resources() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            documents += [document for document in yaml.safe_load_all(path.read_text()) if document]
    return documents


def by_kind() -> dict[str, dict[str, Any]]:
    return {document["kind"]: document for document in resources()}


@pytest.mark.parametrize("resource", resources(), ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_each_manifest_is_valid_for_kubernetes(resource: dict[str, Any]) -> None:
    # The schemas ship inside the package: nothing is fetched.
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_an_invalid_manifest_is_refused() -> None:
    broken = by_kind()["Deployment"]
    broken = {**broken, "spec": {**broken["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")


def test_the_deployment_probes_the_endpoints_and_runs_the_configmap(tmp_path: Path) -> None:
    kinds = by_kind()
    assert set(kinds) == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) <= set(container["resources"]["limits"])
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes["index"] and volumes["config"]["configMap"]["name"] == "zarrdav"
    # The TOML is zarrdav's: every key a setting, every value of its type.
    toml = kinds["ConfigMap"]["data"]["zarrdav.toml"]
    (tmp_path / "zarrdav.toml").write_text(toml)
    settings = load_settings(tmp_path / "zarrdav.toml", environ={})
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert settings.index_dir.startswith(mounts["index"])
    assert container["args"][-1] == f"{mounts['config']}/zarrdav.toml"
    assert not tomllib.loads(toml).get("api_token")  # token-less: a token goes in a Secret
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert (settings.port, int(settings.metrics_address.rsplit(":", 1)[1])) == (ports["http"], ports["metrics"])
    assert kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == kinds["Deployment"]["metadata"]["name"]
    selector = kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= kinds["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
