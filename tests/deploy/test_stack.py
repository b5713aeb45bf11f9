"""The Docker deployment, checked where Docker does not run.

`docker-compose.yml` is loaded by `docker compose config` when the compose plugin is there,
otherwise by the same parser (compose-go) through deploy/compose-check, built once into the
user's cache. Around it: the stack's topology, a broken copy the check must refuse, the
Prometheus scrape targets and credentials, the Grafana dashboard's PromQL against a real
HubMetrics registry, the one-shot federation service's script run for real (and a hub node
started with what it made, scraped as Prometheus would), and the Dockerfile's build inputs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.credentials import verify_secret
from hub.federation import load_federation
from hub.metrics import HubMetrics
from tests.conftest import free_port
from tests.processes import stop

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
CHECK_SOURCE = ROOT / "deploy" / "compose-check"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "cirt-hub.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "cirt-hub.yml"

HUB_NODES = ("hub-pipeline", "hub-api-1", "hub-api-2")
SERVICES = {"kafka", "hub-federation", *HUB_NODES, "prometheus", "grafana"}
FEDERATION_DIR = "/etc/cirt-hub"
FEDERATION_FILE = f"{FEDERATION_DIR}/federation.yaml"
# What the stack reads from the environment: unset here, so the defaults are what is checked.
STACK_VARIABLES = (
    "CIRT_HUB_FEDERATION",
    "CIRT_HUB_KEY_PASSPHRASE_FILE",
    "GRAFANA_ADMIN_PASSWORD",
    "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME",
    "COMPOSE_PROFILES",
)

# The first build of the compose checker downloads compose-go and compiles it.
pytestmark = pytest.mark.timeout(900)


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STACK_VARIABLES}
    env.update(extra)
    return env


@dataclass(frozen=True)
class ComposeCheck:
    """`docker compose config`, or compose-go through deploy/compose-check."""

    command: tuple[str, ...]
    docker: bool

    def run(self, compose_file: Path, **env: str) -> subprocess.CompletedProcess[str]:
        if self.docker:
            args = [*self.command, "-f", str(compose_file), "config", "--format", "json"]
        else:
            args = [*self.command, "-f", str(compose_file)]
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=120,
            env=_environment(**env),
            cwd=compose_file.parent,
        )

    def model(self, compose_file: Path = COMPOSE, **env: str) -> dict[str, Any]:
        done = self.run(compose_file, **env)
        assert done.returncode == 0, f"{compose_file} refused:\n{done.stderr}"
        return json.loads(done.stdout)


def _docker_compose_works() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _build_compose_check() -> Path:
    """deploy/compose-check built into the cache, once per source and Go version."""
    go = shutil.which("go")
    if go is None:
        pytest.fail(
            "no `docker compose` and no Go toolchain: install either to validate "
            "docker-compose.yml (deploy/compose-check needs Go >= 1.24)"
        )
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=True)
    digest = hashlib.sha256(version.stdout.encode())
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((CHECK_SOURCE / name).read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cirt-hub"
    binary = cache / f"compose-check-{digest.hexdigest()[:16]}"
    if binary.is_file():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
    env = dict(os.environ)
    env["GOFLAGS"] = f"{env.get('GOFLAGS', '')} -mod=readonly".strip()
    done = subprocess.run(
        [go, "build", "-trimpath", "-o", str(partial), "."],
        cwd=CHECK_SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    if done.returncode != 0:
        pytest.fail(f"building deploy/compose-check failed:\n{done.stderr}")
    partial.replace(binary)
    return binary


@pytest.fixture(scope="session")
def compose() -> ComposeCheck:
    if _docker_compose_works():
        return ComposeCheck(("docker", "compose"), docker=True)
    return ComposeCheck((str(_build_compose_check()),), docker=False)


@pytest.fixture(scope="session")
def stack(compose: ComposeCheck) -> dict[str, Any]:
    return compose.model()


def _mounts(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["target"]: m for m in service.get("volumes", [])}


def _published(service: dict[str, Any]) -> set[tuple[str, int, int]]:
    return {
        (p.get("host_ip", ""), int(p["published"]), int(p["target"]))
        for p in service.get("ports", [])
    }


def _option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


# --- the compose file ------------------------------------------------------------------------


def test_the_stack_is_the_scaled_topology(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert set(services) == SERVICES
    assert stack["name"] == "cirt-hub"

    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in kafka["environment"])  # KRaft only
    assert kafka["healthcheck"]["test"]

    roles = {name: _option(services[name]["command"], "--role") for name in HUB_NODES}
    assert roles == {"hub-pipeline": "pipeline", "hub-api-1": "api", "hub-api-2": "api"}
    data_volumes = set()
    for name in HUB_NODES:
        node = services[name]
        command, mounts = node["command"], _mounts(node)
        assert node["image"] == "cirt-hub:dev"
        assert node["build"]["dockerfile"].endswith("deploy/Dockerfile")
        assert command[0] == "serve"
        assert _option(command, "--bus") == "kafka://kafka:9092"
        assert _option(command, "--host") == "0.0.0.0"
        assert "--port" not in command  # 8080, where Prometheus scrapes and the healthcheck looks
        assert "--insecure-dev-keys" not in command
        # One federation for every node, read-only; each node its own data; one key store.
        assert _option(command, "--config") == FEDERATION_FILE
        assert mounts[FEDERATION_DIR]["source"] == "federation"
        assert mounts[FEDERATION_DIR].get("read_only") is True
        assert _option(command, "--data-dir") == "/data"
        assert mounts["/data"]["type"] == "volume"
        data_volumes.add(mounts["/data"]["source"])
        assert _option(command, "--keys-dir") == "/keys"
        assert mounts["/keys"]["source"] == "hub-keys"
        assert bool(mounts["/keys"].get("read_only")) is (name != "hub-pipeline")
        assert node["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert node["depends_on"]["hub-federation"]["condition"] == (
            "service_completed_successfully"
        )
    assert len(data_volumes) == len(HUB_NODES)

    # The key passphrase: a file only the pipeline's volume holds (made by hub-federation).
    pipeline = services["hub-pipeline"]
    assert pipeline["environment"] == {"CIRT_HUB_KEY_PASSPHRASE_FILE": "/data/key-passphrase"}
    init = services["hub-federation"]
    assert _mounts(init)["/data"]["source"] == _mounts(pipeline)["/data"]["source"]
    assert init["environment"]["PIPELINE_DATA_DIR"] == "/data"
    assert _mounts(init)[FEDERATION_DIR]["source"] == "federation"
    assert init.get("restart", "no") == "no"

    # Only loopback ports on the host.
    assert _published(services["hub-api-1"]) == {("127.0.0.1", 8080, 8080)}
    assert _published(services["hub-api-2"]) == {("127.0.0.1", 8081, 8080)}
    assert _published(services["prometheus"]) == {("127.0.0.1", 9090, 9090)}
    assert _published(services["grafana"]) == {("127.0.0.1", 3000, 3000)}
    for name in ("kafka", "hub-federation", "hub-pipeline"):
        assert not services[name].get("ports"), f"{name} publishes a port on the host"

    prometheus = services["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    mounts = _mounts(prometheus)
    assert Path(mounts["/etc/prometheus/prometheus.yml"]["source"]) == PROMETHEUS
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert mounts[FEDERATION_DIR]["source"] == "federation"  # the operator's scrape password
    assert mounts[FEDERATION_DIR].get("read_only") is True

    grafana = services["grafana"]
    assert grafana["image"].startswith("grafana/grafana:")
    mounts = _mounts(grafana)
    for kind in ("datasources", "dashboards"):
        source = mounts[f"/etc/grafana/provisioning/{kind}"]["source"]
        assert Path(source) == GRAFANA / "provisioning" / kind
    providers = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]
    assert [p["type"] for p in providers] == ["file"]
    dashboards_dir = providers[0]["options"]["path"]
    assert Path(mounts[dashboards_dir]["source"]) == DASHBOARD.parent
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards_dir}/{DASHBOARD.name}"
    assert grafana["environment"]["GF_USERS_ALLOW_SIGN_UP"] == "false"


def test_a_real_federation_folder_replaces_the_demo_volume(
    compose: ComposeCheck, tmp_path: Path
) -> None:
    services = compose.model(CIRT_HUB_FEDERATION=str(tmp_path))["services"]
    for name in (*HUB_NODES, "hub-federation", "prometheus"):
        mount = _mounts(services[name])[FEDERATION_DIR]
        assert (mount["type"], Path(mount["source"])) == ("bind", tmp_path), name


_BROKEN = {
    "ports-not-a-list": (
        '    ports:\n      - "127.0.0.1:8081:8080"\n',
        '    ports: "not-a-list"\n',
        "ports",
    ),
    "unknown-top-level-key": ("\nvolumes:\n", "\nservicez:\n  extra: {}\n\nvolumes:\n", "servicez"),
    "undeclared-volume": ("      - api-2-data:/data\n", "      - api-3-data:/data\n", "api-3-data"),
}


@pytest.mark.parametrize("breakage", [None, *_BROKEN])
def test_the_check_refuses_a_broken_copy(
    compose: ComposeCheck, tmp_path: Path, breakage: str | None
) -> None:
    """The same file copied elsewhere passes (None); each breakage of it is refused."""
    text = COMPOSE.read_text()
    if breakage is not None:
        old, new, _ = _BROKEN[breakage]
        assert text.count(old) == 1, f"{breakage}: the file changed, update this test"
        text = text.replace(old, new)
    copy = tmp_path / "docker-compose.yml"
    copy.write_text(text)
    done = compose.run(copy)
    if breakage is None:
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode != 0, f"{breakage}: the check accepted a broken file"
    assert _BROKEN[breakage][2] in done.stderr


# --- Prometheus ------------------------------------------------------------------------------


def _hub_scrape_job() -> dict[str, Any]:
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = [
        job
        for job in config["scrape_configs"]
        if any(t.split(":")[0] in HUB_NODES for sc in job["static_configs"] for t in sc["targets"])
    ]
    assert len(jobs) == 1, "one scrape job for the hub nodes"
    return jobs[0]


def test_prometheus_scrapes_every_hub_node_as_the_operator(stack: dict[str, Any]) -> None:
    job = _hub_scrape_job()
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"{name}:8080" for name in HUB_NODES}
    assert job.get("metrics_path", "/metrics") == "/metrics"
    auth = job["basic_auth"]
    assert auth["username"] == "hub-operator"
    assert "password" not in auth, "the password belongs in a file, not in prometheus.yml"
    # The password file lies in the federation folder Prometheus mounts.
    password_file = Path(auth["password_file"])
    mount = _mounts(stack["services"]["prometheus"])[str(password_file.parent)]
    assert mount["source"] == "federation"
    # ...and names an account that may read /metrics.
    federation = load_federation(ROOT / "hub" / "demo" / "federation.yaml")
    operator = federation.account("hub-operator")
    assert operator is not None and "operate" in operator.roles


# --- Grafana ---------------------------------------------------------------------------------


def _exposed_series() -> dict[str, str]:
    """Every series name a HubMetrics registry exposes, to the family it belongs to."""
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    return {
        family.name + suffix: family.name
        for family in HubMetrics().registry.collect()
        for suffix in suffixes[family.type]
    }


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_the_dashboard_shows_real_metrics_from_the_provisioned_datasource() -> None:
    datasources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert len(datasources) == 1
    source = datasources[0]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    uid = source["uid"]

    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = [p for p in _panels(dashboard) if p["type"] != "row"]
    assert len({p["id"] for p in _panels(dashboard)}) == len(list(_panels(dashboard)))
    exprs = []
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
            exprs.append(target["expr"])

    exposed = _exposed_series()
    used = {name for expr in exprs for name in re.findall(r"\bcirt_hub_\w+", expr)}
    assert used <= set(exposed), f"not exposed by hub/metrics.py: {sorted(used - set(exposed))}"
    # Every family hub/metrics.py exposes is on the dashboard.
    assert {exposed[name] for name in used} == set(exposed.values())
    job_names = {
        job["job_name"] for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
    }
    for expr in exprs:
        assert expr.count("(") == expr.count(")") and expr.count("[") == expr.count("]"), expr
        assert set(re.findall(r'job="([^"]+)"', expr)) <= job_names, expr
        if "histogram_quantile" in expr:
            assert all(n.endswith("_bucket") for n in re.findall(r"\bcirt_hub_\w+", expr)), expr
            assert re.search(r"by \([^)]*\ble\b", expr), f"quantile without `le`: {expr}"
    end_to_end = [e for e in exprs if "cirt_hub_end_to_end_seconds_bucket" in e]
    quantiles = {re.match(r"histogram_quantile\(([\d.]+),", e).group(1) for e in end_to_end}
    assert quantiles == {"0.5", "0.9", "0.99"}


# --- the federation service, run for real ----------------------------------------------------


def _federation_script(stack: dict[str, Any]) -> str:
    init = stack["services"]["hub-federation"]
    assert init["entrypoint"] == ["python", "-c"]
    [script] = init["command"]
    assert init["environment"]["FEDERATION_DIR"] == FEDERATION_DIR
    return script


def _run_script(script: str, federation: Path, pipeline_data: Path) -> subprocess.CompletedProcess:
    env = _environment(FEDERATION_DIR=str(federation), PIPELINE_DATA_DIR=str(pipeline_data))
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )


def _wait_healthy(base: str, proc: subprocess.Popen, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert proc.poll() is None, f"cirt-hub serve exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{base} not healthy within {deadline} s")


def _get(url: str, user: str, password: str) -> tuple[int, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_demo_federation_service_gives_every_node_the_same_accounts(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    script = _federation_script(stack)
    federation_dir, pipeline_data = tmp_path / "federation", tmp_path / "pipeline-data"
    federation_dir.mkdir()
    pipeline_data.mkdir()
    first = _run_script(script, federation_dir, pipeline_data)
    assert first.returncode == 0, first.stderr

    federation = load_federation(federation_dir / "federation.yaml")
    stored = json.loads((federation_dir / "demo-accounts.json").read_text())["secrets"]
    accounts = list(federation.accounts())
    assert {a.username for a in accounts} == set(stored)
    for account in accounts:
        assert verify_secret(stored[account.username]["password"], account.secret_hash)
        assert stored[account.username]["password"] in first.stdout  # the demo accounts shown
    operator_password = (federation_dir / "hub-operator.secret").read_text()
    assert operator_password == stored["hub-operator"]["password"]

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(federation_dir / "demo-accounts.json") & 0o077 == 0
    assert mode(federation_dir / "hub-operator.secret") & 0o004  # Prometheus runs as another uid
    passphrase = pipeline_data / "key-passphrase"
    assert mode(passphrase) & 0o077 == 0 and len(passphrase.read_text()) >= 32

    # A second `up` changes nothing.
    before = {p.name: p.read_bytes() for p in (*federation_dir.iterdir(), passphrase)}
    again = _run_script(script, federation_dir, pipeline_data)
    assert again.returncode == 0, again.stderr
    assert {p.name: p.read_bytes() for p in (*federation_dir.iterdir(), passphrase)} == before

    # A hub node serving that federation answers Prometheus's login on /metrics, and only it.
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _environment(CIRT_HUB_KEY_PASSPHRASE_FILE=str(passphrase))
    env.pop("CIRT_HUB_KEY_PASSPHRASE", None)
    federation_file = federation_dir / "federation.yaml"
    serve = [sys.executable, "-m", "hub", "serve", "--config", str(federation_file)]
    serve += ["--data-dir", str(tmp_path / "node"), "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(serve, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(base, proc)
        status, body = _get(f"{base}/metrics", "hub-operator", operator_password)
        assert status == 200, log.read_text()
        assert "cirt_hub_http_requests_total" in body
        assert _get(f"{base}/metrics", "hub-operator", "wrong")[0] == 401
        reader = stored["ng-cert-read"]["password"]
        assert _get(f"{base}/metrics", "ng-cert-read", reader)[0] == 403
    finally:
        stop(proc, grace=20)


def test_the_federation_service_leaves_a_real_federation_alone(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    script = _federation_script(stack)
    federation_dir, pipeline_data = tmp_path / "federation", tmp_path / "pipeline-data"
    federation_dir.mkdir()
    pipeline_data.mkdir()
    own = (ROOT / "examples" / "federation.yaml").read_text()
    (federation_dir / "federation.yaml").write_text(own)
    done = _run_script(script, federation_dir, pipeline_data)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in federation_dir.iterdir()) == ["federation.yaml"]
    assert (federation_dir / "federation.yaml").read_text() == own
    assert "hub-operator.secret" in done.stdout  # the warning: Prometheus has no password

    (federation_dir / "federation.yaml").write_text(
        own.replace("regions: [west-africa]", "regions: [nowhere]", 1)
    )
    refused = _run_script(script, federation_dir, pipeline_data)
    assert refused.returncode != 0
    assert "nowhere" in refused.stderr


# --- the image -------------------------------------------------------------------------------


def _stages(dockerfile: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split into build stages."""
    instructions = re.sub(r"\\\n", " ", dockerfile).splitlines()
    stages: list[list[str]] = []
    for line in (i.strip() for i in instructions):
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_the_image_is_slim_non_root_and_ships_the_package_data(tmp_path: Path) -> None:
    build, final = _stages(DOCKERFILE.read_text())
    assert re.fullmatch(r"FROM python:3\.\d+-slim", final[0])
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert any(line.startswith("HEALTHCHECK ") and "/healthz" in line for line in final)
    assert any(line.startswith("ENTRYPOINT ") and "cirt-hub" in line for line in final)
    assert not any(line.startswith(("COPY ", "ADD ")) for line in final), "sources in the image"
    # Dependencies come from the hashed lock, the wheel without its own (unpinned) ones.
    installs = " ".join(line for line in final if line.startswith("RUN "))
    assert "--require-hashes -r /tmp/requirements.lock" in installs
    assert "--no-deps /wheels/" in installs

    # The wheel is built from what the build stage copies: rebuild that folder and check that
    # every package-data file pyproject.toml declares is a file there (some are symlinks into
    # schemas/ and examples/, which a COPY of hub/ alone would leave dangling).
    context = tmp_path / "src"
    context.mkdir()
    for line in build:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                origin = ROOT / source
                if origin.is_dir():
                    shutil.copytree(
                        origin,
                        context / source,
                        symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"),
                    )
                else:
                    (context / source).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, context / source)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    assert "api/static/*.html" in package_data["hub"]
    for package, patterns in package_data.items():
        for pattern in patterns:
            in_repo = {
                Path(p).relative_to(ROOT)
                for p in glob(str(ROOT / package / pattern))
                if os.path.isfile(p)
            }
            in_image = {
                Path(p).relative_to(context)
                for p in glob(str(context / package / pattern))
                if os.path.isfile(p)
            }
            assert in_repo, f"{package}/{pattern} matches nothing"
            assert in_image == in_repo, f"{package}/{pattern}: the image would lack some"
