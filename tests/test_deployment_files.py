"""Container deployment files: Dockerfile, docker-compose.yml, docker/, .env.example.

No Docker engine is needed: the files are parsed, every command they name is resolved against this checkout, and the
image's web command, health check and build step are run here with the environment the files give them.
"""

import ast
import contextlib
import http.client
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PLATFORM_SERVICES = ("migrate", "web", "worker", "beat")  # run from the image built by the Dockerfile
ALL_SERVICES = (*PLATFORM_SERVICES, "postgres", "redis")
SECRETS = ("DJANGO_SECRET_KEY", "OCPI_TOKEN_ENCRYPTION_KEY", "POSTGRES_PASSWORD")


# --------------------------------------------------------------------------------------------------- parsing helpers


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile_values(keyword: str) -> list[str]:
    return [arguments for name, arguments in dockerfile() if name == keyword]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in dockerfile_values("ENV"):
        for item in shlex.split(arguments):
            name, _, value = item.partition("=")
            env[name] = value
    return env


def exec_form(arguments: str) -> list[str]:
    """The JSON (exec) form of CMD / ENTRYPOINT / HEALTHCHECK CMD: no shell in between, signals reach the process."""
    argv = json.loads(arguments)
    assert isinstance(argv, list), arguments
    assert all(isinstance(item, str) for item in argv), arguments
    return argv


def dockerfile_cmd() -> list[str]:
    values = dockerfile_values("CMD")
    assert len(values) == 1, "exactly one CMD"
    return exec_form(values[0])


def dockerfile_healthcheck() -> list[str]:
    values = dockerfile_values("HEALTHCHECK")
    assert len(values) == 1, "exactly one HEALTHCHECK"
    _, found, command = values[0].partition("CMD ")
    assert found, values[0]
    return exec_form(command)


def compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def command_argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def healthcheck_argv(test: str | list[str]) -> list[str]:
    """The command of a compose healthcheck ``test`` (CMD exec form or CMD-SHELL string)."""
    if isinstance(test, str):
        return shlex.split(test)
    kind, *rest = test
    if kind == "CMD-SHELL":
        return shlex.split(" ".join(rest))
    assert kind == "CMD", test
    return rest


# Compose interpolation: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+x},
# $$ for a literal $. A bare $NAME would also be interpolated on the host, usually by mistake: refused here.
INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|(?P<invalid>))"
)


def compose_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from compose_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from compose_strings(value)


def interpolate(node: Any, env: dict[str, str], missing: set[str]) -> Any:
    """What ``docker compose config`` makes of ``node`` with ``env`` (.env); required names unset go to ``missing``."""
    if isinstance(node, dict):
        return {key: interpolate(value, env, missing) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env, missing) for value in node]
    if not isinstance(node, str):
        return node

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        assert name, f"bad interpolation in {node!r}"
        value = env.get(name)
        present = value is not None and (value != "" or not op.startswith(":"))
        if op.endswith("-"):
            return value if present and value is not None else arg
        if op.endswith("?"):
            if not present:
                missing.add(name)
            return value or ""
        if op.endswith("+"):
            return arg if present else ""
        return value or ""

    return INTERPOLATION.sub(replace, node)


ENV_LINE = re.compile(r"^(?P<commented>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def env_example() -> dict[str, dict[str, Any]]:
    """Variables of .env.example: name → {value, commented (optional, value = default), description}."""
    documented: dict[str, dict[str, Any]] = {}
    previous = ""
    for number, line in enumerate((REPO / ".env.example").read_text().splitlines(), start=1):
        match = ENV_LINE.match(line)
        if match:
            name = match["name"]
            assert name not in documented, f".env.example line {number}: {name} documented twice"
            description = previous if previous.startswith("#") and not ENV_LINE.match(previous) else ""
            documented[name] = {
                "value": match["value"],
                "commented": bool(match["commented"]),
                "description": description.lstrip("# ").strip(),
                "line": number,
            }
        else:
            assert not line or line.startswith("#"), f".env.example line {number} is neither NAME=value nor comment"
        previous = line
    return documented


ENV_READERS = {"str", "bool", "int", "float", "json", "list", "tuple", "dict", "url", "db", "db_url", "cache"}
ENV_READERS |= {"cache_url", "email", "email_url", "search_url", "path"}


def source_files() -> list[Path]:
    """Project code that runs outside tests: settings and entry points, Django apps, container and tooling scripts."""
    files = [REPO / "manage.py", REPO / "conftest.py"]
    files += sorted((REPO / "config").rglob("*.py")) + sorted((REPO / "docker").glob("*.py"))
    files += sorted((REPO / "scripts").glob("*.py"))
    for package in sorted(REPO.glob("*/__init__.py")):  # the Django apps (and any other top-level package)
        if package.parent.name not in {"config", "tests", "bench"}:
            files += sorted(package.parent.rglob("*.py"))
    skipped = {"tests", "migrations"}
    return [path for path in files if not skipped & set(path.relative_to(REPO).parts)]


def environment_reads(path: Path) -> tuple[set[str], list[str]]:
    """Names of the environment variables ``path`` reads (env(...), env.<type>(...), os.environ, os.getenv) and
    the places reading a name that is not a literal (which no documentation could list)."""
    names: set[str] = set()
    dynamic: list[str] = []

    def record(argument: ast.expr | None, node: ast.AST) -> None:
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            names.add(argument.value)
        else:
            dynamic.append(f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}")

    def is_os_environ(node: ast.expr) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "environ"
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        )

    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            first = node.args[0] if node.args else None
            if isinstance(func, ast.Name) and func.id == "env":
                record(first, node)
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                reader = (func.value.id, func.attr)
                if reader == ("os", "getenv") or (reader[0] == "env" and reader[1] in ENV_READERS):
                    record(first, node)
            if isinstance(func, ast.Attribute) and is_os_environ(func.value) and func.attr in {"get", "setdefault"}:
                record(first, node)
        elif isinstance(node, ast.Subscript) and is_os_environ(node.value) and isinstance(node.ctx, ast.Load):
            record(node.slice, node)
    return names, dynamic


def settings_environment_reads() -> dict[str, set[str]]:
    reads: dict[str, set[str]] = {}
    for path in source_files():
        names, dynamic = environment_reads(path)
        assert not dynamic, f"environment variables read under a computed name: {dynamic}"
        for name in names:
            reads.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return reads


def compose_variables() -> set[str]:
    names = {
        match["name"] or match["bare"] for text in compose_strings(compose()) for match in INTERPOLATION.finditer(text)
    }
    return names - {None}


def executable(name: str) -> Path | None:
    """Where the image's PATH would find ``name``: the interpreter's bin folder (the virtualenv here)."""
    found = shutil.which(name, path=str(BIN))
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config/, docker/ and manage.py in a fresh folder: a developer's .env or var/ cannot leak into the runs (the
    image has neither; see .dockerignore). The Django apps are imported from the checkout (PYTHONPATH)."""
    root = tmp_path_factory.mktemp("image")
    for folder in ("config", "docker"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "manage.py", root / "manage.py")
    return root


def clean_environment(**values: str) -> dict[str, str]:
    """The calling environment without any variable the platform reads, plus the image's ENV and ``values``."""
    documented = set(env_example()) | set(settings_environment_reads())
    env = {name: value for name, value in os.environ.items() if name not in documented}
    env.pop("PYTHONPATH", None)
    env.update(PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    env.update(dockerfile_env())
    env.update(values)
    return env


def production_secrets() -> dict[str, str]:
    return {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "OCPI_TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode()}


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def local_argv(argv: list[str]) -> list[str]:
    found = executable(argv[0])
    assert found is not None, f"{argv[0]} is not installed by requirements.txt"
    return [str(found), *argv[1:]]


def load_healthcheck_module() -> Any:
    spec = importlib.util.spec_from_file_location("docker_healthcheck", REPO / "docker" / "healthcheck.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------- command resolution

OPTIONS_WITH_VALUE = {"-c", "--config", "-b", "--bind", "-w", "--workers", "-k", "--worker-class", "-l"}
OPTIONS_WITH_VALUE |= {"--loglevel", "-Q", "--queues", "-s", "--schedule", "-d", "--destination", "--timeout"}


def positionals(argv: list[str]) -> list[str]:
    result: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
        elif item in OPTIONS_WITH_VALUE or item in {"-A", "--app"}:
            skip = True
        elif not item.startswith("-"):
            result.append(item)
    return result


def option(argv: list[str], *names: str) -> str | None:
    for index, item in enumerate(argv[:-1]):
        if item in names:
            return argv[index + 1]
    return None


def command_problems(argv: list[str]) -> list[str]:
    """What in ``argv`` does not exist in this checkout: executable, files, manage.py commands, modules, Celery app."""
    from celery.app.utils import find_app
    from celery.bin.celery import celery as celery_cli
    from django.core.management import get_commands

    from config.celery_app import app as platform_celery_app

    problems: list[str] = []
    program, *rest = argv
    if executable(program) is None:
        problems.append(f"{program}: not installed")
    for item in rest:
        if item.endswith(".py") and not (REPO / item).is_file():
            problems.append(f"{item}: no such file")
    if program == "python" and rest[:1] == ["manage.py"]:
        if len(rest) < 2 or rest[1] not in get_commands():
            problems.append(f"manage.py {rest[1:2]}: no such management command")
    elif program == "gunicorn":
        config_file = option(rest, "-c", "--config")
        if config_file is not None and not (REPO / config_file).is_file():
            problems.append(f"gunicorn config {config_file}: no such file")
        apps = positionals(rest)
        if len(apps) != 1:
            problems.append(f"gunicorn: expected one WSGI application, got {apps}")
        else:
            module, _, attribute = apps[0].partition(":")
            module_file = REPO / (module.replace(".", "/") + ".py")
            if not module_file.is_file():
                problems.append(f"gunicorn: {module} has no file {module_file.relative_to(REPO)}")
            elif f"{attribute or 'application'} =" not in module_file.read_text():
                problems.append(f"gunicorn: {module} defines no {attribute or 'application'}")
    elif program == "celery":
        app_name = option(rest, "-A", "--app")
        if app_name is None or find_app(app_name) is not platform_celery_app:
            problems.append(f"celery -A {app_name}: not the platform's Celery app")
        subcommands = positionals(rest)
        if not subcommands or subcommands[0] not in celery_cli.commands:
            problems.append(f"celery: unknown subcommand {subcommands[:1]}")
    return problems


# ------------------------------------------------------------------------------------------------------ Dockerfile


def test_dockerfile_builds_a_non_root_production_image_without_secrets() -> None:
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = dockerfile_values("RUN")
    assert any("pip install" in run and "-r requirements.txt" in run for run in runs)
    requirements = [
        line.split("#")[0].strip()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert requirements, "requirements.txt lists nothing"
    assert [line for line in requirements if not re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[A-Za-z0-9_.+-]+", line)] == []
    assert "gunicorn" in {line.split("==")[0].lower() for line in requirements}

    # The last USER before CMD is unprivileged.
    users = [(index, arguments) for index, (keyword, arguments) in enumerate(instructions) if keyword == "USER"]
    cmd_index = next(index for index, (keyword, _) in enumerate(instructions) if keyword == "CMD")
    assert users, "no USER: the processes would run as root"
    index, user = users[-1]
    assert index < cmd_index
    assert user.split(":")[0] not in {"root", "0"}
    assert any("useradd" in run and user.split(":")[0] in run for run in runs)

    assert dockerfile_values("EXPOSE") == ["8000"]
    env = dockerfile_env()
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    # Secrets are never baked into the image (ENV and ARG persist in its metadata and history).
    baked = set(env) | {arg.split("=")[0] for arg in dockerfile_values("ARG")}
    assert baked.isdisjoint(SECRETS)


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for private in (".env", ".git", ".venv", "var"):
        assert private in patterns, f"{private} would be copied into the image"
    # Nothing the image needs is excluded (the Dockerfile copies the whole context).
    needed = ["manage.py", "requirements.txt", "config/wsgi.py", "docker/gunicorn.conf.py", "docker/healthcheck.py"]
    needed += ["ocpi_core/spec/definitions.json", "templates"]
    for path in needed:
        assert (REPO / path).exists(), path
        assert not any(Path(path).match(pattern) or path.split("/")[0] == pattern for pattern in patterns), path


def test_dockerfile_collectstatic_step_runs_with_its_build_time_environment(project_copy: Path, tmp_path: Path) -> None:
    step = [run for run in dockerfile_values("RUN") if "collectstatic" in run]
    assert len(step) == 1
    words = shlex.split(step[0].split("&&")[0])
    assert words[0] == "env"
    assignments = [word for word in words[1:] if re.fullmatch(r"[A-Z_]+=.*", word)]
    argv = words[1 + len(assignments) :]
    assert argv == ["python", "manage.py", "collectstatic", "--noinput"]
    assert command_problems(argv) == []
    build_env = dict(assignment.split("=", 1) for assignment in assignments)
    # The throw-away values exist only for this step: the secrets are not in the image's ENV.
    assert {"DJANGO_SECRET_KEY", "OCPI_TOKEN_ENCRYPTION_KEY"} <= set(build_env)
    assert set(build_env).isdisjoint(dockerfile_env())

    static_root = tmp_path / "static"
    result = run(
        local_argv(argv), project_copy, clean_environment(**build_env, DJANGO_STATIC_ROOT=str(static_root)), 120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (static_root / "admin" / "css" / "base.css").is_file()
    assert (static_root / "admin" / "css" / "base.css.gz").is_file(), "whitenoise compression did not run"
    # Without the throw-away values the same step fails: production settings demand the secrets.
    result = run(local_argv(argv), project_copy, clean_environment(DJANGO_STATIC_ROOT=str(tmp_path / "other")), 120)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.parametrize(("concurrency", "workers"), [(None, 2), ("1", 2), ("5", 5)])
def test_image_command_runs_gunicorn_sync_workers_on_port_8000(
    project_copy: Path, concurrency: str | None, workers: int
) -> None:
    argv = dockerfile_cmd()
    assert argv[0] == "gunicorn"
    assert command_problems(argv) == []
    assert positionals(argv[1:]) == ["config.wsgi"]
    assert dockerfile_values("ENTRYPOINT") == [], "CMD alone starts the web process; compose overrides it per service"
    env = clean_environment(**production_secrets())
    if concurrency is not None:
        env["WEB_CONCURRENCY"] = concurrency
    # --print-config loads the application too, so config.wsgi must import under production settings.
    result = run([*local_argv(argv), "--print-config"], project_copy, env)
    assert result.returncode == 0, result.stderr[-3000:]
    resolved = dict(re.findall(r"^(\w+)\s+= (.*)$", result.stdout, flags=re.MULTILINE))
    assert resolved["bind"] == "['0.0.0.0:8000']"
    assert resolved["worker_class"] == "sync"
    assert resolved["control_socket_disable"] == "True"
    assert int(resolved["workers"]) == workers


def gunicorn_children(pid: int) -> int:
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            count += 1
    return count


def test_image_serves_healthz_and_its_healthcheck_passes(project_copy: Path) -> None:
    port = free_port()
    env = clean_environment(**production_secrets(), PORT=str(port), DJANGO_ALLOWED_HOSTS="ocpi.example.com")
    env["DATABASE_URL"] = f"sqlite:///{project_copy / 'db.sqlite3'}"
    healthcheck = local_argv(dockerfile_healthcheck())
    assert command_problems(dockerfile_healthcheck()) == []
    compose_healthcheck = healthcheck_argv(services()["web"]["healthcheck"]["test"])
    assert compose_healthcheck == dockerfile_healthcheck()

    down = run(healthcheck, project_copy, env, 30)
    assert down.returncode != 0, "the health check passes while nothing listens"
    assert "unreachable" in down.stderr

    log = (project_copy / "gunicorn.log").open("w")  # a file, not a pipe nobody reads: that would block the server
    server = subprocess.Popen(
        local_argv(dockerfile_cmd()), cwd=project_copy, env=env, stdout=subprocess.DEVNULL, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        result = run(healthcheck, project_copy, env, 30)
        while result.returncode != 0 and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.3)
            result = run(healthcheck, project_copy, env, 30)
        assert result.returncode == 0, result.stderr + (project_copy / "gunicorn.log").read_text()[-3000:]
        if Path("/proc").is_dir():
            while gunicorn_children(server.pid) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert gunicorn_children(server.pid) == 2, "WEB_CONCURRENCY=2 should give two workers"

        # Production settings validate the Host header: the probe passes only because it presents an allowed host.
        for host, status in (("ocpi.example.com", 200), ("attacker.example", 400)):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/healthz", headers={"Host": host})
            response = connection.getresponse()
            body = response.read()
            connection.close()
            assert response.status == status, (host, body[:300])
            if status == 200:
                assert json.loads(body) == {"status": "ok"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    server_log = (project_copy / "gunicorn.log").read_text()
    assert server.returncode == 0, f"gunicorn did not shut down cleanly on SIGTERM: {server_log[-3000:]}"
    assert "Booting worker" in server_log
    assert "control socket" not in server_log.lower(), "no control socket in $HOME (read-only in the image)"
    assert run(healthcheck, project_copy, env, 30).returncode != 0


def test_healthcheck_presents_a_host_django_allows() -> None:
    probe_host = load_healthcheck_module().probe_host
    assert probe_host("") == "localhost"
    assert probe_host("ocpi.example.com,localhost") == "ocpi.example.com"
    assert probe_host(" *, api.example.com") == "api.example.com"
    assert probe_host("*") == "localhost"
    # A leading dot allows the domain and its subdomains; the bare domain is a valid Host for it.
    from django.http.request import validate_host

    assert validate_host(probe_host(".example.com"), [".example.com"])


# -------------------------------------------------------------------------------------------------- docker-compose


def test_compose_defines_the_services_with_health_checks() -> None:
    defined = services()
    assert set(ALL_SERVICES) <= set(defined)
    assert defined["postgres"]["image"] == "postgres:16"
    assert defined["redis"]["image"] == "redis:7"
    assert healthcheck_argv(defined["postgres"]["healthcheck"]["test"])[0] == "pg_isready"
    assert healthcheck_argv(defined["redis"]["healthcheck"]["test"]) == ["redis-cli", "ping"]
    assert healthcheck_argv(defined["web"]["healthcheck"]["test"]) == ["python", "docker/healthcheck.py"]
    for name in PLATFORM_SERVICES:
        service = defined[name]
        assert service["build"] in (".", {"context": "."}), name
        assert service["environment"]["DJANGO_SETTINGS_MODULE"] == "config.settings.production", name
        # The image's HTTP probe would mark worker, beat and migrate unhealthy: each sets its own or disables it.
        healthcheck = service.get("healthcheck")
        assert healthcheck, f"{name} would inherit the web probe of the image"
        assert healthcheck.get("disable") is True or "test" in healthcheck, name
    assert "disable" not in defined["worker"]["healthcheck"], "the worker's liveness is checked (celery ping)"
    assert defined["migrate"]["restart"] == "no", "migrate runs once"
    assert "8000" in str(defined["web"]["ports"][0]).split(":")[-1]


def test_compose_dependencies_wait_for_migrations_and_healthy_backends() -> None:
    defined = services()
    for name in ("web", "worker"):
        assert defined[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }, name
    assert defined["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert defined["beat"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    for name, service in defined.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in defined, f"{name} depends on unknown {dependency}"
            if rule["condition"] == "service_healthy":
                check = defined[dependency].get("healthcheck", {})
                assert "test" in check, f"{dependency} never becomes healthy"
                assert not check.get("disable"), f"{dependency} never becomes healthy"
            elif rule["condition"] == "service_completed_successfully":
                assert defined[dependency].get("restart") == "no", f"{dependency} must exit, not restart"


def test_compose_commands_name_things_that_exist() -> None:
    defined = services()
    commands = {name: command_argv(defined[name]["command"]) for name in PLATFORM_SERVICES}
    assert commands["migrate"][:3] == ["python", "manage.py", "migrate"]
    assert commands["web"] == dockerfile_cmd()
    assert commands["worker"][:5] == ["celery", "-A", "config", "worker", "-l"]
    assert commands["beat"][:4] == ["celery", "-A", "config", "beat"]
    for name, argv in commands.items():
        assert command_problems(argv) == [], name
    worker_check = healthcheck_argv(defined["worker"]["healthcheck"]["test"])
    assert worker_check[:5] == ["celery", "-A", "config", "inspect", "ping"]
    assert command_problems(worker_check) == []
    # Probes that run our code in the container: the web and worker ones above.
    assert command_problems(healthcheck_argv(defined["web"]["healthcheck"]["test"])) == []


def task_queues_in_use() -> set[str]:
    """Every queue a task may be sent to: the default, routes, task options and queue=... literals in the code."""
    from django.conf import settings

    from config.celery_app import app

    app.loader.import_default_modules()
    queues = {settings.CELERY_TASK_DEFAULT_QUEUE}
    routes = getattr(settings, "CELERY_TASK_ROUTES", None) or {}
    for route_map in routes if isinstance(routes, list | tuple) else [routes]:
        if isinstance(route_map, dict):
            queues |= {route["queue"] for route in route_map.values() if isinstance(route, dict) and "queue" in route}
    queues |= {str(getattr(task, "queue", "")) for task in app.tasks.values() if getattr(task, "queue", None)}
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "queue" and isinstance(node.value, ast.Constant):
                queues.add(str(node.value.value))
    return queues


def test_worker_consumes_every_queue_tasks_are_sent_to() -> None:
    argv = command_argv(services()["worker"]["command"])
    consumed = set((option(argv, "-Q", "--queues") or "").split(","))
    assert {"default", "push", "commands", "sync"} <= consumed
    unconsumed = task_queues_in_use() - consumed
    assert not unconsumed, f"tasks sent to {unconsumed} would wait forever"


def test_worker_and_beat_commands_start_under_production_settings(project_copy: Path, tmp_path: Path) -> None:
    """The compose commands of worker and beat, with the image's settings; an in-memory broker stands in for Redis."""
    defined = services()
    worker_argv = command_argv(defined["worker"]["command"])
    beat_argv = command_argv(defined["beat"]["command"])
    schedule = Path(option(beat_argv, "-s", "--schedule") or "")
    local_schedule = tmp_path / "beat" / schedule.name
    local_schedule.parent.mkdir()
    beat_argv = [str(local_schedule) if item == str(schedule) else item for item in beat_argv]
    env = clean_environment(**production_secrets(), CELERY_BROKER_URL="memory://", HOME=str(tmp_path))
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    processes = {}
    for name, argv in (("worker", worker_argv), ("beat", beat_argv)):
        log = (tmp_path / f"{name}.log").open("w")
        process = subprocess.Popen(
            local_argv(argv), cwd=project_copy, env=env, stdout=log, stderr=log, start_new_session=True
        )
        processes[name] = (process, log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            worker_ready = " ready." in (tmp_path / "worker.log").read_text()
            if worker_ready and list(local_schedule.parent.iterdir()):
                break
            assert all(process.poll() is None for process, _ in processes.values()), "a process exited early"
            time.sleep(0.3)
    finally:
        # Start-up is what is checked here; a warm shutdown of the worker's pool takes seconds, so the process group
        # (the worker and its pool children, or beat) is killed.
        for process, log in processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            log.close()
    worker_log = (tmp_path / "worker.log").read_text()
    beat_log = (tmp_path / "beat.log").read_text()
    assert " ready." in worker_log, worker_log[-3000:]
    for queue in (option(worker_argv, "-Q", "--queues") or "").split(","):
        assert re.search(rf"\.> {queue}\s+exchange={queue}\(", worker_log), f"worker does not consume {queue}"
    assert list(local_schedule.parent.glob(f"{schedule.name}*")), beat_log[-3000:]
    assert str(local_schedule) in beat_log


def test_beat_keeps_its_schedule_in_a_writable_volume() -> None:
    defined = compose()
    beat = defined["services"]["beat"]
    schedule = Path(option(command_argv(beat["command"]), "-s", "--schedule") or "")
    assert schedule.is_absolute(), "the schedule file would land in the read-only code folder"
    mounts = {target: source for source, target in (volume.split(":")[:2] for volume in beat["volumes"])}
    assert str(schedule.parent) in mounts
    assert mounts[str(schedule.parent)] in defined["volumes"], "a named volume survives re-creating the container"
    # A fresh named volume takes the ownership of the image folder it is mounted on: the Dockerfile creates that
    # folder and gives it to the unprivileged user.
    workdir = Path(dockerfile_values("WORKDIR")[-1])
    relative = schedule.parent.relative_to(workdir)
    user = dockerfile_values("USER")[-1].split(":")[0]
    setup = " ".join(dockerfile_values("RUN"))
    assert f"mkdir -p {relative}" in setup
    assert re.search(rf"chown -R {user}:\w+ {relative.parts[0]}\b", setup)


def test_postgres_keeps_its_data_in_a_named_volume() -> None:
    defined = compose()
    volumes = defined["services"]["postgres"]["volumes"]
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in volumes)
    source = next(volume.split(":")[0] for volume in volumes if volume.endswith(":/var/lib/postgresql/data"))
    assert source in defined["volumes"]


def test_compose_interpolation_is_well_formed_and_secrets_are_required() -> None:
    problems = []
    for text in compose_strings(compose()):
        for match in INTERPOLATION.finditer(text):
            if match["escaped"]:
                continue
            if not match["name"]:
                problems.append(text)  # $NAME (host-side, often meant for the container: write $$NAME) or a lone $
            elif not match["op"]:
                problems.append(text)  # ${NAME} without a default or :? silently becomes empty
    assert problems == []
    # With .env.example copied unfilled, compose refuses to start and names each missing secret.
    example = {name: item["value"] for name, item in env_example().items() if not item["commented"]}
    missing: set[str] = set()
    interpolate(compose(), example, missing)
    assert missing == set(SECRETS)


def filled_env_file() -> dict[str, str]:
    """.env as an operator writes it from .env.example: its uncommented values, the empty secrets generated."""
    values = {name: item["value"] for name, item in env_example().items() if not item["commented"]}
    for name, value in values.items():
        if not value:
            values[name] = Fernet.generate_key().decode() if "ENCRYPTION_KEY" in name else secrets.token_hex(24)
    return values


def test_compose_environment_boots_production_settings_wired_to_the_services(project_copy: Path) -> None:
    env_file = filled_env_file()
    missing: set[str] = set()
    defined = interpolate(compose(), env_file, missing)
    assert not missing
    web = defined["services"]["web"]
    assert web["env_file"] == [{"path": ".env", "required": False}]
    # Precedence in the container: image ENV < env_file < environment.
    container_env = clean_environment(**{**env_file, **web["environment"]})
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'db': s.DATABASES['default'], 'broker': s.CELERY_BROKER_URL, 'hosts': s.ALLOWED_HOSTS, "
        "'base_url': s.OCPI_BASE_URL, 'debug': s.DEBUG, 'private': s.OCPI_ALLOW_PRIVATE_URLS}, default=str))"
    )
    result = run([sys.executable, "-c", script], project_copy, container_env)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout)
    postgres = defined["services"]["postgres"]["environment"]
    database = loaded["db"]
    assert database["ENGINE"] == "ocpi_core.db_backends.postgresql"
    assert database["HOST"] in defined["services"], "DATABASE_URL must name the postgres service"
    assert str(database["PORT"]) == "5432"
    assert (database["NAME"], database["USER"], database["PASSWORD"]) == (
        postgres["POSTGRES_DB"],
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    broker = urlsplit(loaded["broker"])
    assert broker.scheme == "redis"
    assert broker.hostname in defined["services"]
    assert loaded["debug"] is False
    assert loaded["private"] is False
    assert loaded["base_url"] == env_file["OCPI_BASE_URL"]
    # The example is coherent: the public host is allowed, and so is the host the health check presents.
    from django.http.request import validate_host

    assert validate_host(urlsplit(loaded["base_url"]).hostname or "", loaded["hosts"])
    probe_host = load_healthcheck_module().probe_host
    assert validate_host(probe_host(container_env["DJANGO_ALLOWED_HOSTS"]), loaded["hosts"])


# ----------------------------------------------------------------------------------------------------- .env.example


def test_env_example_documents_each_variable_once_with_a_description() -> None:
    documented = env_example()
    assert documented
    undescribed = [name for name, item in documented.items() if len(item["description"]) < 10]
    assert undescribed == []
    for name in SECRETS:
        assert not documented[name]["commented"], f"{name}: required"
        assert documented[name]["value"] == "", f"{name}: no shared example secret; each operator generates one"
    for line in (REPO / ".env.example").read_text().splitlines():
        match = ENV_LINE.match(line)
        if match:
            assert "#" not in match["value"], line
            assert not match["value"].startswith(("'", '"')), line


def test_every_environment_variable_read_is_documented() -> None:
    reads = settings_environment_reads()
    # The scan sees the reads it must see (a broken parser would make the next assertion vacuous).
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "OCPI_BASE_URL", "TEST_DATABASE_NAME"} <= set(
        reads
    )
    assert {"DJANGO_SETTINGS_MODULE", "WEB_CONCURRENCY", "PORT"} <= set(reads)
    settings_text = "\n".join(path.read_text() for path in sorted((REPO / "config" / "settings").glob("*.py")))
    by_regex = set(re.findall(r"\benv(?:\.\w+)?\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']", settings_text))
    assert by_regex <= set(reads)
    documented = set(env_example())
    undocumented = {name: sorted(files) for name, files in reads.items() if name not in documented}
    assert undocumented == {}, "add these to .env.example"
    compose_undocumented = compose_variables() - documented
    assert compose_undocumented == set(), "add these to .env.example"


def test_env_example_lists_no_variable_nobody_reads() -> None:
    used = set(settings_environment_reads()) | compose_variables()
    stale = set(env_example()) - used
    assert stale == set()


def test_env_example_defaults_match_compose_defaults() -> None:
    documented = env_example()
    for text in compose_strings(compose()):
        for match in INTERPOLATION.finditer(text):
            if match["op"] == ":-" and documented[match["name"]]["commented"]:
                assert documented[match["name"]]["value"] == match["arg"], match["name"]


# Their real default is a path inside the project folder (var/...), which one line cannot show for every checkout.
# DJANGO_SETTINGS_MODULE is set by each run itself.
PATH_DEFAULTS = {
    "DATABASE_URL",
    "TEST_DATABASE_URL",
    "DJANGO_STATIC_ROOT",
    "CELERY_EMBEDDED_BROKER_DIR",
    "OCPI_EXAMPLES_DIR",
    "OCPI_SPEC_DIR",
}
PATH_DEFAULTS |= {"DJANGO_SETTINGS_MODULE"}

SETTINGS_DUMP = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "values = {n: repr(getattr(s, n)) for n in dir(s) if n.isupper()}; "
    "print(json.dumps({n: v for n, v in values.items() if ' at 0x' not in v}))"
)


@pytest.mark.parametrize("module", ["config.settings.production", "config.settings.test"])
def test_env_example_defaults_are_the_settings_defaults(project_copy: Path, module: str) -> None:
    """Setting every optional variable to the default .env.example shows changes no setting at all."""
    defaults = {
        name: item["value"] for name, item in env_example().items() if item["commented"] and name not in PATH_DEFAULTS
    }
    assert "OCPI_MAX_PAGE_LIMIT" in defaults
    base = clean_environment(**production_secrets(), DJANGO_SETTINGS_MODULE=module)
    dumps = []
    for env in (base, {**base, **defaults}):
        result = run([sys.executable, "-c", SETTINGS_DUMP], project_copy, env)
        assert result.returncode == 0, result.stderr[-3000:]
        dumps.append(json.loads(result.stdout))
    without, with_defaults = dumps
    differences = {
        name: (without[name], with_defaults.get(name)) for name in without if without[name] != with_defaults.get(name)
    }
    assert differences == {}


# ------------------------------------------------------------------------------------------- production settings


def settings_import(project_copy: Path, **values: str) -> subprocess.CompletedProcess[str]:
    env = clean_environment(DJANGO_SETTINGS_MODULE="config.settings.production", **values)
    return run([sys.executable, "-c", "import django; django.setup()"], project_copy, env)


def test_production_settings_refuse_to_start_without_their_secrets(project_copy: Path) -> None:
    good = production_secrets()
    assert settings_import(project_copy, **good).returncode == 0

    missing_secret = settings_import(project_copy, OCPI_TOKEN_ENCRYPTION_KEY=good["OCPI_TOKEN_ENCRYPTION_KEY"])
    assert missing_secret.returncode != 0
    assert "ImproperlyConfigured" in missing_secret.stderr
    assert "DJANGO_SECRET_KEY" in missing_secret.stderr

    missing_key = settings_import(project_copy, DJANGO_SECRET_KEY=good["DJANGO_SECRET_KEY"])
    assert missing_key.returncode != 0
    assert "OCPI_TOKEN_ENCRYPTION_KEY" in missing_key.stderr

    # An unfilled .env sets them empty: refused as well, not a silent fallback.
    for name in ("DJANGO_SECRET_KEY", "OCPI_TOKEN_ENCRYPTION_KEY"):
        empty = settings_import(project_copy, **{**good, name: ""})
        assert empty.returncode != 0
        assert name in empty.stderr

    not_fernet = settings_import(project_copy, **{**good, "OCPI_TOKEN_ENCRYPTION_KEY": "not-a-fernet-key"})
    assert not_fernet.returncode != 0
    assert "OCPI_TOKEN_ENCRYPTION_KEY" in not_fernet.stderr
