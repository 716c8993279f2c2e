"""What can be checked offline about deploy/: the systemd units, the nginx site, the Caddyfile,
the Dockerfile and compose file, the Makefile's .env rule, and that every command and file
the guide tells a person to use exists."""

from __future__ import annotations

import configparser
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli import cli
from bridge.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GUIDE = (DEPLOY / "README.md").read_text()
BIND = load_settings({"WEBHOOK_SECRET": "x" * 20}).bind  # the default the proxies point at


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text())
    return parser


@pytest.mark.parametrize("name", ["bridge-web.service", "bridge-scheduler.service"])
def test_systemd_units_are_hardened_and_write_only_the_data_folder(name: str) -> None:
    service = unit(name)["Service"]

    assert service["User"] == "bridge" and service["Group"] == "bridge"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/opt/bridge/instance"
    for key in ("ProtectHome", "PrivateTmp", "NoNewPrivileges"):
        assert service[key] == "true", key
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"] == "/etc/bridge/bridge.env"
    assert service["WorkingDirectory"] == "/opt/bridge"


def test_the_units_start_what_exists() -> None:
    web = unit("bridge-web.service")["Service"]["ExecStart"]
    scheduler = unit("bridge-scheduler.service")["Service"]["ExecStart"]

    assert "-c deploy/gunicorn.conf.py wsgi:app" in web
    assert (ROOT / "deploy" / "gunicorn.conf.py").is_file() and (ROOT / "wsgi.py").is_file()
    assert scheduler.endswith("-m bridge scheduler") and "scheduler" in cli.commands


def _balanced(text: str) -> bool:
    depth = 0
    for char in re.sub(r"#.*", "", text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def test_nginx_serves_tls_on_443_and_proxies_to_the_bridge() -> None:
    site = (DEPLOY / "nginx" / "bridge.conf").read_text()
    limits = (DEPLOY / "nginx" / "bridge-limits.conf").read_text()

    assert _balanced(site)
    assert re.search(r"^\s*listen 443 ssl;", site, re.M)
    assert re.search(r"^\s*listen 80;", site, re.M) and "return 301 https://" in site
    assert "/.well-known/acme-challenge/" in site
    assert "/etc/letsencrypt/live/" in site and "ssl_protocols TLSv1.2 TLSv1.3;" in site
    assert f"proxy_pass http://{BIND};" in site
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in site
    assert "X-Forwarded-Proto $scheme" in site
    assert "include snippets/bridge-limits-http.conf;" in site
    assert "include snippets/bridge-limits.conf;" in site
    assert "client_max_body_size 128k;" in limits
    metrics = re.search(r"location = /metrics \{(.*?)\}", site, re.S)
    assert metrics and "allow 127.0.0.1;" in metrics.group(1)
    assert "deny all;" in metrics.group(1)


def test_caddyfile_proxies_to_the_bridge() -> None:
    caddy = (DEPLOY / "Caddyfile").read_text()

    assert _balanced(caddy)
    assert f"reverse_proxy {{$UPSTREAM:{BIND}}}" in caddy
    assert "max_size 128KB" in caddy and "/metrics" in caddy


def test_dockerfile_runs_gunicorn_as_a_user_with_a_volume_and_healthcheck() -> None:
    docker = (DEPLOY / "Dockerfile").read_text()
    lines = [line.strip() for line in docker.splitlines()
             if line.strip() and not line.startswith("#")]

    assert lines[0] == "FROM python:3.11-slim"
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] != "USER root"
    assert 'VOLUME ["/app/instance"]' in lines
    assert any(line.startswith("HEALTHCHECK") for line in lines) and "/healthz" in docker
    assert 'CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"]' in lines
    assert "pip install -r requirements.txt" in docker
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def _compose_blocks(text: str) -> dict[str, list[str]]:
    """Top-level keys of a YAML file with the lines under each (no YAML parser is installed)."""
    blocks: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert "\t" not in line, "YAML must not be indented with tabs"
        if not line.startswith(" "):
            current = line.split(":", 1)[0]
            blocks[current] = []
        else:
            blocks[current].append(line)
    return blocks


def test_compose_file_has_the_bridge_and_optional_caddy_and_postgres() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    blocks = _compose_blocks(text)

    assert {"services", "volumes"} <= set(blocks)
    services = {line.strip().rstrip(":") for line in blocks["services"]
                if re.fullmatch(r"  [a-z-]+:", line)}
    assert services == {"bridge", "caddy", "postgres"}
    assert 'profiles: ["caddy"]' in text and 'profiles: ["postgres"]' in text
    assert "dockerfile: deploy/Dockerfile" in text and "context: .." in text
    assert "env_file: ../.env" in text and "bridge-data:/app/instance" in text
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in text
    # Compose checks ${VAR:?} even in profiles that are not started: none may be used.
    assert not re.search(r"\$\{\w+:?\?", re.sub(r"#.*", "", text))
    volumes = {line.strip().rstrip(":") for line in blocks["volumes"]}
    assert {"bridge-data", "caddy-data", "postgres-data"} <= volumes


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()

    assert {".env", "instance/", ".venv/", ".git/"} <= set(ignored)


def test_make_writes_env_with_fresh_secrets_readable_by_the_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "fresh.env"
    subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), f"ENV_FILE={target}",
                    f"PYTHON={sys.executable}", str(target)], check=True, capture_output=True)

    values = dict(line.split("=", 1) for line in target.read_text().splitlines()
                  if line and not line.startswith("#"))
    assert len(values["WEBHOOK_SECRET"]) >= 24 and len(values["ADMIN_PASSWORD"]) >= 20
    assert values["WEBHOOK_SECRET"] != values["ADMIN_PASSWORD"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def _guide_code() -> str:
    return "\n".join(re.findall(r"```[a-z]*\n(.*?)```", GUIDE, re.S))


def test_every_bridge_command_in_the_guide_exists() -> None:
    code = _guide_code() + "\n" + "\n".join(re.findall(r"`([^`\n]+)`", GUIDE))
    named = set(re.findall(r"python -m bridge ([a-z]+)", code))
    named |= set(re.findall(r"(?:^|[;&|(]\s*|`)bridge ([a-z]+)", code, re.M))

    assert {"doctor", "login", "banner", "signals", "signal"} <= named
    assert named <= set(cli.commands), named - set(cli.commands)


def test_every_make_target_and_repository_file_in_the_guide_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w.-]*):", makefile, re.M))
    code = _guide_code()

    for target in re.findall(r"(?:^|-H |&& )make ([\w.-]+)", code, re.M):
        assert target in targets, target
    paths = set(re.findall(r"(?:/opt/bridge/)?\b(deploy/[\w./-]+\w)", GUIDE))
    paths |= set(re.findall(r"`(requirements[\w-]*\.txt|wsgi\.py|\.env\.sample)`", GUIDE))
    assert "deploy/nginx/bridge.conf" in paths and "deploy/bridge-web.service" in paths
    for path in paths:
        assert (ROOT / path).exists(), path


def test_the_guide_walks_through_what_a_live_setup_needs() -> None:
    for step in ("A record", "ufw allow 443/tcp", "useradd", "make run", "systemctl enable",
                 "certbot", "Caddy", "static IP", "100008", "KOTAK_TOTP_SECRET",
                 "TRUSTED_PROXIES=1", "/webhook/tradingview", ".backup", "pg_dump",
                 "pg_restore", "secret.key", "PostgreSQL"):
        assert step in GUIDE, step


def test_the_main_readme_points_to_the_guide_and_the_doctor() -> None:
    readme = (ROOT / "README.md").read_text()

    assert "deploy/README.md" in readme and "make doctor" in readme
