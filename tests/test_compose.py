"""docker-compose.yml, the production-like stack: parsed (no image is pulled or started) and
checked for its services, their wiring, health, ports and secrets. `docker compose config` also
runs when the docker CLI has the compose plugin."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from cnss_edi.dropbox import SERVICE_LOGIN

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"

AIRFLOW = [
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
]
ONE_SHOT = {"airflow-init"}
SERVICES = {"postgres", "redis", "sftp", "mailpit", *ONE_SHOT, *AIRFLOW}
# The interpolations compose needs, with harmless values (for `docker compose config`).
VARIABLES = [
    "POSTGRES_PASSWORD",
    "AIRFLOW_DB_PASSWORD",
    "CNSS_EDI_DB_PASSWORD",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_JWT_SECRET",
]
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (compose also allows a list of KEY=VALUE)."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def dsn(url: str) -> tuple[str | None, str, str]:
    """(user, password's variable, database) of a URL whose password is a ${VAR…}."""
    parts = urlsplit(INTERPOLATION.sub(r"<\1>", url))
    return parts.username, parts.password or "", parts.path.lstrip("/")


def test_the_stack_has_every_service(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= SERVICES, sorted(SERVICES - set(services))


def test_every_long_running_service_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_the_api_server_is_checked_on_its_version_endpoint(
    services: dict[str, dict[str, Any]],
) -> None:
    check = " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert "localhost:8080/api/v2/version" in check


def test_airflow_services_share_the_common_block(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    common = compose["x-airflow-common"]
    assert common["build"]["dockerfile"] == "Dockerfile"
    for name in [*AIRFLOW, *ONE_SHOT]:
        service = services[name]
        assert service.get("image") == common["image"], name
        assert service.get("build") == common["build"], name
        missing = {k: v for k, v in env(common).items() if env(service).get(k) != v}
        assert not missing, f"{name} differs from x-airflow-common: {sorted(missing)}"
    text = COMPOSE.read_text(encoding="utf-8")
    for name in [*AIRFLOW, *ONE_SHOT]:
        block = text.split(f"\n  {name}:\n", 1)[1].split("\n\n", 1)[0]
        assert "<<: *airflow-common" in block, f"{name} does not merge x-airflow-common"


def test_airflow_uses_celery_with_a_redis_broker(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    common = env(compose["x-airflow-common"])
    assert common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert common["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    assert common["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert common["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert common["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/cnss-edi/dags"
    assert common["AIRFLOW__SMTP__SMTP_HOST"] == "mailpit"
    assert common["AIRFLOW__SMTP__SMTP_PORT"] == "1025"
    assert services["airflow-worker"]["command"][:2] == ["celery", "worker"]
    assert services["airflow-init"]["command"] == ["db", "migrate"]


def test_the_worker_scales(services: dict[str, dict[str, Any]]) -> None:
    worker = services["airflow-worker"]
    assert "container_name" not in worker, "a fixed name forbids --scale"
    assert not worker.get("ports"), "a published port forbids --scale"


def test_cnss_and_airflow_have_their_own_database_and_role(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    common = env(compose["x-airflow-common"])
    airflow = dsn(common["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    backend = dsn(common["AIRFLOW__CELERY__RESULT_BACKEND"])
    cnss = dsn(env(services["airflow-worker"])["CNSS_EDI_DATABASE_URL"])
    assert airflow == backend == ("airflow", "<AIRFLOW_DB_PASSWORD>", "airflow")
    assert cnss == ("cnss_edi", "<CNSS_EDI_DB_PASSWORD>", "cnss_edi")
    assert dsn(env(services["sftp"])["CNSS_EDI_DATABASE_URL"]) == cnss
    script = (ROOT / "deploy/postgres/10-databases.sh").read_text(encoding="utf-8")
    for role in ("airflow", "cnss_edi"):
        assert re.search(rf"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE", script)
        assert f"CREATE DATABASE {role} OWNER {role};" in script
        assert f"REVOKE ALL ON DATABASE {role} FROM PUBLIC;" in script
    postgres = env(services["postgres"])
    assert {"AIRFLOW_DB_PASSWORD", "CNSS_EDI_DB_PASSWORD"} <= set(postgres)


def test_depends_on_waits_for_health_and_the_migration(
    services: dict[str, dict[str, Any]],
) -> None:
    expected = {name: {"postgres", "redis", "airflow-init"} for name in AIRFLOW}
    expected["airflow-worker"] = expected["airflow-worker"] | {"airflow-apiserver"}
    expected["airflow-init"] = {"postgres"}
    expected["sftp"] = {"postgres"}
    for name, wanted in expected.items():
        depends = services[name].get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        assert set(depends) >= wanted, f"{name} does not wait for {sorted(wanted - set(depends))}"
        for dependency, rule in depends.items():
            condition = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert rule.get("condition") == condition, f"{name} → {dependency}"


def test_every_published_port_is_bound_to_localhost(
    services: dict[str, dict[str, Any]],
) -> None:
    published = {}
    for name, service in services.items():
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
                published[int(port["published"])] = name
            else:
                host, published_port, _ = str(port).split(":")
                assert host == "127.0.0.1", f"{name}: {port}"
                published[int(published_port)] = name
    assert published == {
        5432: "postgres",
        8080: "airflow-apiserver",
        2222: "sftp",
        1025: "mailpit",
        8025: "mailpit",
    }


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in [str(key), *_strings(value)]]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [str(node)]


def test_no_secret_is_written_in_the_file(compose: dict[str, Any]) -> None:
    secretive = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$", re.IGNORECASE)
    blocks = [compose.get("x-airflow-common-env", {})]
    blocks += list(compose["services"].values())
    for block in blocks:
        for key, value in (env(block) if "environment" in block else block).items():
            if not secretive.search(key) or key.endswith("_FILE"):
                continue
            assert INTERPOLATION.fullmatch(value), f"{key} is written in the file"
    # A password inside a URL, anywhere (user:password@host).
    for text in _strings(compose):
        for password in re.findall(r"://[^/:@\s]+:([^@\s]*(?:\([^)]*\))?[^@\s]*)@", text):
            assert INTERPOLATION.fullmatch(password), f"a password is written in {text!r}"
    # And in the raw text, whatever YAML makes of it.
    raw = COMPOSE.read_text(encoding="utf-8")
    for line in raw.splitlines():
        line = INTERPOLATION.sub(r"${\1}", line.split("#")[0])
        found = re.search(r"(?i)(password|secret)[a-z_]*\s*[:=]\s*(\S+)", line)
        if found:
            assert found.group(2).startswith("${"), f"literal secret: {line.strip()}"
    for variable in {m.group(1) for m in INTERPOLATION.finditer(raw)}:
        assert re.search(rf"(?<!\$)\$\{{{variable}:\?", raw), f"${{{variable}}} is unguarded"


def test_the_secrets_stay_out_of_git() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    for path in (".env", ".secrets/stack.env"):
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", path], cwd=ROOT, capture_output=True, check=False
        )
        assert ignored.returncode == 0, f"{path} is not ignored by git"


def test_every_referenced_file_exists(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = ROOT / build["context"]
            assert context.is_dir(), name
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts a missing {source}"
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11$", dockerfile, re.MULTILINE)
    assert "ENV PYTHONPATH=/opt/cnss-edi" in dockerfile
    sftp = (ROOT / "deploy/sftp/Dockerfile").read_text(encoding="utf-8")
    assert "openssh-server" in sftp
    entrypoint = re.search(r'ENTRYPOINT \["python3", "/opt/cnss-edi/(.+?)"\]', sftp)
    assert entrypoint, "the sftp image has no entrypoint"
    assert (ROOT / entrypoint.group(1)).is_file()
    script = ROOT / "deploy/postgres/10-databases.sh"
    assert script.stat().st_mode & 0o111, "the init script is not executable"


def _dag_variables() -> set[str]:
    tree = ast.parse((ROOT / "cnss_edi/runtime.py").read_text(encoding="utf-8"))  # the DAGs'

    names = set()
    for node in ast.walk(tree):
        value = node.value if isinstance(node, ast.Constant) else None
        if isinstance(value, str) and re.fullmatch(r"CNSS_EDI_[A-Z_]+", value):
            names.add(value)
    return names


def test_the_workers_reach_the_boxes_over_sftp(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    variables = _dag_variables()
    assert {"CNSS_EDI_DATABASE_URL", "CNSS_EDI_INBOX", "CNSS_EDI_OUTBOX"} <= variables
    worker = env(services["airflow-worker"])
    assert variables <= set(worker), sorted(variables - set(worker))
    assert "user" not in services["airflow-worker"]  # Airflow's own user, not root
    address = urllib.parse.urlsplit(worker["AIRFLOW_CONN_CNSS_EDI_SFTP"])
    extra = dict(urllib.parse.parse_qsl(address.query))
    sftp = services["sftp"]
    assert (address.scheme, address.hostname, address.username) == ("sftp", "sftp", SERVICE_LOGIN)
    assert f"127.0.0.1:{address.port}:{address.port}" in sftp["ports"]
    mounts = _mounts(services["airflow-worker"])
    sftp_mounts = _mounts(sftp)
    # The service key and the host key: made by the sftp entrypoint on a volume the worker
    # mounts read-only.
    entrypoint = (ROOT / "deploy/sftp/entrypoint.py").read_text(encoding="utf-8")
    assert 'folder / "id_ed25519"' in entrypoint
    key_folder = env(sftp)["CNSS_EDI_SSHD_DIR"]
    assert extra == {
        "key_file": f"{key_folder}/service/id_ed25519",
        "host_key_file": f"{key_folder}/host_key.pub",
    }
    assert mounts[key_folder] == (sftp_mounts[key_folder][0], "ro")
    # The archive outlives the worker; its inbox and outbox are its own scratch copies.
    archive = mounts[worker["CNSS_EDI_ARCHIVE"]][0]
    assert archive in compose["volumes"]
    assert services["airflow-worker"]["depends_on"]["sftp"] == {"condition": "service_healthy"}


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Mount point → (source, mode)."""
    found = {}
    for volume in service.get("volumes") or []:
        source, target, *mode = str(volume).split(":")
        found[target] = (source, mode[0] if mode else "rw")
    return found


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker CLI is not installed")
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    dotenv = tmp_path / "stack.env"
    dotenv.write_text("".join(f"{name}=x{i}\n" for i, name in enumerate(VARIABLES)))
    result = subprocess.run(
        [docker, "compose", "--env-file", str(dotenv), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
