"""The deploy files point at commands, settings and objects that exist.

No Docker engine or Kubernetes cluster runs here, so the files are checked the way those
tools would read them: YAML parses, references resolve, and every command is one the CLI
accepts.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from intake_hub.cli import parser
from intake_hub.config import PLACEHOLDER_PREFIXES
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
UNITS = sorted(SYSTEMD.glob("*.service"))


def _ignored(path: Path) -> bool:
    """Whether .gitignore names `path`: the secret files operators create beside the examples."""
    rel = path.relative_to(ROOT).as_posix()
    return rel in (ROOT / ".gitignore").read_text().splitlines()


DEPLOY_FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file() and not _ignored(p))
SECRET_NAME = re.compile(r"(TOKEN|SECRET|SECRET_KEY|PASSWORD|_PASS|AES_KEY)$")
URL_PASSWORD = re.compile(r"://[^/@:\s]+:([^@\s]*)@")
ASSIGNMENT = re.compile(r"\b([A-Z][A-Z0-9_]+)=(\S*)")


def documented_settings() -> set[str]:
    """Every `INTAKE_HUB_*` variable the README's configuration table names."""
    return set(re.findall(r"`(INTAKE_HUB_[A-Z_]+)`", (ROOT / "README.md").read_text()))


def assert_cli_accepts(argv: list[str]) -> None:
    """Fail unless `intake-hub ARGV` parses."""
    try:
        parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"intake-hub does not accept {argv}")


def k8s_documents() -> list[dict[str, Any]]:
    """Every object the kustomization lists, in order."""
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d]
    return docs


@pytest.mark.parametrize("unit_path", UNITS, ids=[u.name for u in UNITS])
def test_systemd_units_run_real_subcommands(unit_path: Path) -> None:
    """Every intake-hub command a unit runs is one the CLI accepts, stopped by SIGTERM."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(unit_path)
    service = unit["Service"]
    for key in ("ExecStartPre", "ExecStart"):
        if key in service:
            argv = service[key].split()
            assert argv[0].endswith("/intake-hub")
            assert_cli_accepts(argv[1:])
    assert service["KillSignal"] == "SIGTERM"


def test_env_example_names_only_known_settings() -> None:
    """The example environment file sets only variables the service reads."""
    text = (SYSTEMD / "env.example").read_text()
    names = re.findall(r"^#?\s*(INTAKE_HUB_[A-Z_]+)=", text, re.M)
    assert names and set(names) <= documented_settings()


def test_compose_runs_two_gateways_two_workers_with_health_checks() -> None:
    """The compose file has RabbitMQ, PostgreSQL, 2 gateways, 2 workers, all health-checked."""
    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    services: dict[str, Any] = compose["services"]
    roles = [s["command"][0] for s in services.values() if "command" in s]
    assert roles.count("gateway") == 2 and roles.count("worker") == 2
    assert {"rabbitmq", "postgres", "migrate"} <= set(services)
    for name, service in services.items():
        if "command" in service:
            assert_cli_accepts(service["command"])
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        if name != "migrate":
            assert "test" in service["healthcheck"], f"{name} has no health check"
        for var in service.get("environment", {}):
            if var.startswith("INTAKE_HUB_"):
                assert var in documented_settings(), f"{name} sets undocumented {var}"
    node_ids = [
        s["environment"]["INTAKE_HUB_NODE_ID"]
        for s in services.values()
        if s.get("command") == ["gateway"]
    ]
    assert len(set(node_ids)) == 2, "gateways must not share a ticket-number slot"


def test_k8s_objects_reference_only_what_exists() -> None:
    """Every ConfigMap, Secret and workload a manifest names is defined or generated."""
    docs = k8s_documents()
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    defined = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for generated in kustomization["configMapGenerator"]:
        defined.add(("ConfigMap", generated["name"]))
        for file in generated["files"]:
            assert (DEPLOY / "k8s" / file).resolve().is_file(), file
    for generated in kustomization["secretGenerator"]:
        defined.add(("Secret", generated["name"]))
    for doc in docs:
        for container in _containers(doc):
            for source in container.get("envFrom", []):
                for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if key in source:
                        assert (kind, source[key]["name"]) in defined
            assert_cli_accepts(container["args"])
        for volume in _pod(doc).get("volumes", []):
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in defined
        target = doc.get("spec", {}).get("scaleTargetRef")
        if target:
            assert (target["kind"], target["name"]) in defined


def test_k8s_selectors_match_their_pods() -> None:
    """Workload, Service and PodDisruptionBudget selectors each select the pods meant."""
    docs = k8s_documents()
    pods = {d["metadata"]["name"]: _pod_labels(d) for d in docs if _pod_labels(d)}
    for doc in docs:
        selector = doc.get("spec", {}).get("selector")
        if not selector:
            continue
        wanted = selector.get("matchLabels", selector)
        matched = [n for n, labels in pods.items() if wanted.items() <= labels.items()]
        assert matched, f"{doc['kind']} {doc['metadata']['name']} selects no pods"
        if doc["kind"] in ("Deployment", "StatefulSet"):
            assert wanted.items() <= _pod_labels(doc).items()


def test_k8s_settings_and_secrets_are_documented() -> None:
    """The ConfigMap and the Secret's example env file set only variables the service reads."""
    for doc in k8s_documents():
        if doc["kind"] == "ConfigMap":
            assert set(doc["data"]) <= documented_settings(), doc["metadata"]["name"]
    example = env_file_values(DEPLOY / "k8s" / "secrets.env.example")
    assert example and set(example) <= documented_settings()


def env_file_values(path: Path) -> dict[str, str]:
    """The `NAME=value` lines of an env file, comments skipped."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def yaml_assignments(node: Any) -> list[tuple[str, str]]:
    """Every (name, scalar) pair in a YAML tree, `{name: N, value: V}` items included."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if isinstance(node.get("name"), str) and "value" in node:
            found.append((node["name"], str(node["value"])))
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                found += yaml_assignments(value)
            elif value is not None:
                found.append((str(key), str(value)))
    elif isinstance(node, list):
        for item in node:
            found += yaml_assignments(item)
    return found


def shipped_assignments(path: Path) -> list[tuple[str, str]]:
    """Every variable a deploy file sets, with the value it ships."""
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        return [pair for doc in yaml.safe_load_all(text) for pair in yaml_assignments(doc)]
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return [(m[1], m[2].strip("\"'")) for line in lines for m in ASSIGNMENT.finditer(line)]


@pytest.mark.parametrize(
    "path", DEPLOY_FILES, ids=[str(p.relative_to(DEPLOY)) for p in DEPLOY_FILES]
)
def test_no_deploy_file_ships_a_secret_or_a_placeholder(path: Path) -> None:
    """No placeholder anywhere; every secret and URL password is empty or read from elsewhere."""
    text = path.read_text().lower()
    for placeholder in PLACEHOLDER_PREFIXES:
        assert placeholder not in text, f"{path.name} ships the placeholder {placeholder!r}"
    for name, value in shipped_assignments(path):
        if SECRET_NAME.search(name.upper()):
            assert value == "" or value.startswith("${"), f"{path.name} ships a value for {name}"
        for password in URL_PASSWORD.findall(value):
            assert password.startswith("${"), f"{path.name} ships a password in {name}"


def test_k8s_secret_is_generated_from_a_git_ignored_env_file() -> None:
    """No Secret object is applied as written; the generator reads a git-ignored env file."""
    assert all(d["kind"] != "Secret" for d in k8s_documents())
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    [generator] = kustomization["secretGenerator"]
    assert generator["name"] == "intake-hub-secrets"
    for env in generator["envs"]:
        assert _ignored(DEPLOY / "k8s" / env), f"{env} is not git-ignored"
        example = env_file_values(DEPLOY / "k8s" / f"{env}.example")
        assert {"INTAKE_HUB_SECRET_KEY", "INTAKE_HUB_ADMIN_TOKEN"} <= set(example)
        assert set(example.values()) == {""}, "the example must hold no value"


def test_compose_reads_secrets_from_a_git_ignored_env_file() -> None:
    """The intake-hub containers get their secrets from a git-ignored .env; the example is empty."""
    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        if "command" in service:
            assert service["env_file"] == ".env", name
            environment = service.get("environment", {})
            assert "INTAKE_HUB_ADMIN_TOKEN" not in environment, name
            assert environment.get("INTAKE_HUB_SECRET_KEY", "${").startswith("${"), name
    assert _ignored(DEPLOY / "compose" / ".env")
    example = env_file_values(DEPLOY / "compose" / ".env.example")
    assert {"INTAKE_HUB_SECRET_KEY", "INTAKE_HUB_ADMIN_TOKEN", "POSTGRES_PASSWORD"} <= set(example)
    assert set(example.values()) == {""}, "the example must hold no value"
    assert {n for n in example if n.startswith("INTAKE_HUB_")} <= documented_settings()


@pytest.mark.parametrize("unit_path", UNITS, ids=[u.name for u in UNITS])
def test_systemd_units_read_secrets_from_their_environment_file(unit_path: Path) -> None:
    """Every unit reads /etc/intake-hub/env and sets no secret itself; env.example is empty."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(unit_path)
    assert unit["Service"]["EnvironmentFile"] == "/etc/intake-hub/env"
    for name, _ in shipped_assignments(unit_path):
        assert not SECRET_NAME.search(name), f"{unit_path.name} sets {name}"
    example = env_file_values(SYSTEMD / "env.example")
    for name, value in example.items():
        if SECRET_NAME.search(name):
            assert value == "", f"env.example ships a value for {name}"


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc.get("spec", {})
    template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
    return dict(template["spec"]) if template else {}


def _pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    template = doc.get("spec", {}).get("template")
    return dict(template.get("metadata", {}).get("labels", {})) if template else {}


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(_pod(doc).get("containers", []))
