"""docs/reference.md keeps up with the code.

Every list here is read from the code itself (the settings ``bridge/config.py`` reads, the
fields of the signal schemas, the journal's statuses, the REST API's calls and their fields,
the CLI's commands and options, the Makefile's targets, the error codes the bridge answers),
so a field, setting or command added without a line in the reference fails here, naming it.
The README must not send users to DESIGN.md, which is not in their copy of the repository.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from flask.testing import FlaskClient

from bridge import config
from bridge.api.orders import FIELDS, ModifySchema
from bridge.api.routes import CALLS
from bridge.app import create_app
from bridge.cli import cli
from bridge.config import load_settings
from bridge.journal.rows import OrderState, SignalStatus
from bridge.kotak.sandbox.paper import INSTRUMENTS_FILE
from bridge.schemas import SECRET_FIELDS, LegSchema, SignalSchema
from bridge.startup import prepare
from bridge.webhooks.responses import public_status
from bridge.wiring import build_services

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference.md"
#: where the bridge's own answers are made; the Kotak connector's codes are Kotak's
ANSWERING = [path for path in (ROOT / "bridge").rglob("*.py")
             if "kotak" not in path.relative_to(ROOT / "bridge").parts]


def _sections() -> dict[str, str]:
    """The reference's ``## `` sections by title, each with its ``###`` subsections."""
    text = REFERENCE.read_text(encoding="utf-8")
    parts = re.split(r"^## +(.+)$", text, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def _section(title: str) -> str:
    sections = _sections()
    assert title in sections, f"docs/reference.md has no section '## {title}'"
    return sections[title]


def _rows(text: str) -> dict[str, str]:
    """Table rows keyed by each name written in code in their first cell: ``| `a`, `b` |``
    gives rows ``a`` and ``b``."""
    rows: dict[str, str] = {}
    for line in text.splitlines():
        cells = line.split("|")
        if not line.startswith("|") or len(cells) < 3:
            continue
        for name in re.findall(r"`([^`]+)`", cells[1]):
            rows.setdefault(name, line)
    return rows


def _missing(wanted: set[str], present: dict[str, str] | set[str]) -> list[str]:
    return sorted(wanted - set(present))


# --- settings -------------------------------------------------------------------------------


def _settings_in_code() -> set[str]:
    """Every name ``load_settings`` reads, and every name it knows."""
    source = Path(config.__file__).read_text(encoding="utf-8")
    read = set(re.findall(r"\br\.\w+\(\s*\"([A-Z][A-Z0-9_]+)\"", source))
    return read | set(config.KNOWN_KEYS)


def test_every_setting_has_a_row_with_its_default_and_meaning() -> None:
    settings = _section("Settings")
    rows = _rows(settings)
    assert not _missing(_settings_in_code(), rows), (
        "settings read by bridge/config.py without a row under '## Settings' in "
        f"docs/reference.md: {_missing(_settings_in_code(), rows)}")
    for name in _settings_in_code():
        cells = [cell.strip() for cell in rows[name].split("|")[1:-1]]
        assert len(cells) == 4 and cells[3], f"{name}: a row needs default, values, meaning"


def test_the_settings_tables_name_only_real_settings() -> None:
    """A setting removed from the code must leave the reference too."""
    settings = _section("Settings")
    checked = settings.split("### Outside the settings file's checks")[0]
    stale = _missing(set(_rows(checked)) - {"setting"}, _settings_in_code())
    assert not stale, f"docs/reference.md lists settings the bridge does not read: {stale}"


def test_the_servers_own_variables_and_account_secrets_are_documented() -> None:
    gunicorn = (ROOT / "deploy" / "gunicorn.conf.py").read_text(encoding="utf-8")
    read = set(re.findall(r"os\.environ(?:\.get|\.setdefault)\(\s*\"([A-Z_]+)\"", gunicorn))
    assert read, "deploy/gunicorn.conf.py reads no variable: update this test"
    launcher = set(config._LAUNCHER_KEYS)  # names the settings leave to the launcher
    rows = _rows(_section("Settings"))
    assert not _missing(read | launcher | {"ENV_FILE"}, rows)
    assert f"{config.ACCOUNT_ENV_PREFIX}<NAME>_MPIN" in rows


def test_the_paper_markets_own_file_is_documented() -> None:
    assert f"DATA_DIR/{INSTRUMENTS_FILE}" in _section("Paper mode's market")


# --- signal fields --------------------------------------------------------------------------


def test_every_signal_field_has_a_row() -> None:
    fields = set(SignalSchema().fields) | set(SECRET_FIELDS)
    rows = _rows(_section("Signal fields").split("**Fields of a leg**")[0])
    assert not _missing(fields, rows), (
        f"signal fields without a row under '## Signal fields': {_missing(fields, rows)}")
    stale = _missing(set(rows) - {"field"}, fields)
    assert not stale, f"docs/reference.md lists fields the signal does not take: {stale}"
    for name in fields:
        cells = [cell.strip() for cell in rows[name].split("|")[1:-1]]
        assert len(cells) == 5 and all(cells[1:5:2]), f"{name}: type, rule and example needed"


def test_every_leg_field_has_a_row() -> None:
    legs = _section("Signal fields").split("**Fields of a leg**")[1]
    rows = _rows(legs)
    assert not _missing(set(LegSchema().fields), rows)


# --- statuses -------------------------------------------------------------------------------


def test_every_journal_status_and_its_public_answer_is_explained() -> None:
    rows = _rows(_section("Signal statuses in the journal"))
    assert not _missing({status.value for status in SignalStatus}, rows)
    for status in SignalStatus:
        assert f"`{public_status(status)}`" in rows[status.value], status


def test_every_answer_status_has_its_http_codes_and_what_to_do() -> None:
    rows = _rows(_section("Answer statuses and HTTP codes"))
    assert not _missing({public_status(status) for status in SignalStatus}, rows)


def test_every_order_status_is_explained() -> None:
    rows = _rows(_section("Order statuses"))
    assert not _missing({state.value for state in OrderState}, rows)


# --- error codes ----------------------------------------------------------------------------


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _codes_in(tree: ast.AST) -> Iterator[str]:
    """The codes a module gives its refusals and failures: ``ErrorInfo("code", ...)``,
    ``ApiError(status, message, "code")``, ``code="..."`` / ``error_code="..."`` arguments,
    ``self._fail(order, state, "code", ...)``, class-level ``code = "..."`` and
    ``code, why = "...", ...``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            positional = {"ErrorInfo": 0, "ApiError": 2}.get(name or "")
            if isinstance(node.func, ast.Attribute) and name == "_fail":
                positional = 2  # OrderService._fail(order, state, code, reason)
            if positional is not None and len(node.args) > positional:
                found = _literal(node.args[positional])
                if found:
                    yield found
            for keyword in node.keywords:
                if keyword.arg in ("code", "error_code"):
                    found = _literal(keyword.value)
                    if found:
                        yield found
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if (isinstance(item, ast.Assign) and len(item.targets) == 1
                        and getattr(item.targets[0], "id", None) == "code"):
                    found = _literal(item.value)
                    if found:
                        yield found
        elif (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple)
              and isinstance(node.value, ast.Tuple) and node.targets[0].elts
              and getattr(node.targets[0].elts[0], "id", None) == "code"):
            found = _literal(node.value.elts[0])
            if found:
                yield found


@functools.cache
def _error_codes() -> frozenset[str]:
    codes: set[str] = set()
    for path in ANSWERING:
        source = path.read_text(encoding="utf-8")
        if re.search(r"ErrorInfo\(|ApiError\(|_fail\(|\bcode\b", source):
            codes.update(_codes_in(ast.parse(source)))
    # BridgeError's own "error" is a base no refusal is answered with
    return frozenset(codes - {"error"})


def test_the_error_code_scan_finds_the_codes_it_should() -> None:
    """The scanner sees each way the code writes a code (so an empty list cannot pass)."""
    assert {"invalid_signal", "kill_switch", "no_such_call", "broker_session",
            "outcome_unknown", "address_blocked", "partial"} <= _error_codes()


def test_every_error_code_is_explained() -> None:
    rows = _rows(_section("Error codes"))
    missing = _missing(_error_codes(), rows)
    assert not missing, f"error codes without a row under '## Error codes': {missing}"


# --- the REST API ---------------------------------------------------------------------------


def test_every_rest_call_has_a_row_naming_its_fields() -> None:
    rows = _rows(_section("REST API"))
    assert not _missing(set(CALLS), rows), f"REST calls undocumented: {_missing(set(CALLS), rows)}"
    extra = {"validity", "amo", "alert_id", "comment"}  # said once for every order call
    for call, accepted in {**FIELDS, "modifyorder": tuple(ModifySchema().fields)}.items():
        row = rows[call]
        unnamed = sorted(name for name in set(accepted) - extra if f"`{name}`" not in row)
        assert not unnamed, f"{call}: fields not named in its row: {unnamed}"


# --- commands -------------------------------------------------------------------------------


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from _commands(command, f"{path} ")
        else:
            yield path, command


COMMANDS = sorted(_commands(cli), key=lambda item: item[0])


def _command_row(path: str) -> str:
    text = _section("Commands")
    for line in text.splitlines():
        if line.startswith("|") and re.search(rf"`bridge {re.escape(path)}(?=[ `])", line):
            return line
    return ""


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_command_has_a_row_with_its_options_and_choices(path: str,
                                                              command: click.Command) -> None:
    row = _command_row(path)
    assert row, f"`bridge {path}` has no row under '## Commands' in docs/reference.md"
    for param in command.params:
        for flag in (*param.opts, *param.secondary_opts):
            if flag.startswith("--") and flag != "--help":
                assert flag in row, f"bridge {path}: {flag} is not in its row"
        if isinstance(param, click.Argument) and isinstance(param.type, click.Choice):
            for choice in param.type.choices:
                assert str(choice) in row, f"bridge {path}: {choice} is not in its row"


def test_every_make_target_has_a_row() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):.*## ", makefile, flags=re.M))
    assert targets, "the Makefile has no described targets: update this test"
    rows = _rows(_section("Make targets"))
    assert not _missing({f"make {target}" for target in targets}, rows)


# --- the README -----------------------------------------------------------------------------


def test_the_readme_sends_users_to_the_reference_not_to_design_md() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    cited = [line.strip() for line in readme.splitlines()
             if re.search(r"DESIGN(\.md)?\b|\bsection \d+[a-z]?\b", line)]
    assert not cited, f"README.md cites a document users do not have: {cited}"
    assert "docs/reference.md" in readme


def test_the_reference_links_only_to_its_own_sections() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    headings = {_anchor(title) for title in re.findall(r"^#{2,3} +(.+)$", text, flags=re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert not sorted(links - headings), f"links to no heading: {sorted(links - headings)}"


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


# --- the examples run -----------------------------------------------------------------------

SECRET = "reference-webhook-secret-0123"
API_KEY = "reference-api-key-0123456789"


@pytest.fixture(scope="module")
def paper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FlaskClient, Path]]:
    """A bridge as `make run` starts it: paper mode, defaults, the REST API on."""
    folder = tmp_path_factory.mktemp("reference")
    settings = load_settings({"WEBHOOK_SECRET": SECRET, "API_KEY": API_KEY,
                              "DATA_DIR": str(folder / "instance"),
                              "DATABASE_URL": f"sqlite:///{folder / 'bridge.db'}"})
    services = build_services(settings)
    prepare(services)
    app = create_app(services=services)
    services.start_background()
    try:
        yield app.test_client(), settings.intake.chartink_config
    finally:
        services.close()


def _examples() -> list[str]:
    """Every ``curl`` of the reference's shell examples, one line each."""
    text = REFERENCE.read_text(encoding="utf-8")
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip().startswith("curl "):
                commands.append(command.strip())
    return commands


def _request(command: str) -> tuple[str, dict[str, str], str]:
    """The path, headers and body of a ``curl`` written against `make run`."""
    filled = (command.replace("$WEBHOOK_SECRET", SECRET).replace("$API_KEY", API_KEY)
              .replace("$B/", "/"))
    words = shlex.split(filled)
    path, headers, body = "", {"Content-Type": "application/x-www-form-urlencoded"}, ""
    pairs = iter(words[1:])
    for word in pairs:
        if word in ("-H", "--header"):
            name, _, value = next(pairs).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data"):
            body = next(pairs)
        elif word == "-X":
            next(pairs)
        elif word.startswith("/"):
            path = word
    return path, headers, body


def test_the_examples_are_curl_commands_against_make_run() -> None:
    examples = _examples()
    assert len(examples) >= 10
    assert all("$B/" in command for command in examples), "an example not against make run"


def test_every_example_works_against_a_paper_bridge(
        paper: tuple[FlaskClient, Path]) -> None:
    """Pasted after `make run`, each example places its order (or answers what it reads)."""
    client, chartink = paper
    scans = re.search(r"```json\n(\{\"scans\".*?)```", REFERENCE.read_text(encoding="utf-8"),
                      flags=re.S)
    assert scans, "the ChartInk section's chartink.json example is gone"
    chartink.parent.mkdir(parents=True, exist_ok=True)
    chartink.write_text(scans.group(1), encoding="utf-8")
    ran = 0
    for command in _examples():
        if "$(" in command or "$ts" in command:
            continue  # the signed request: computed by the shell (tests/signals test_auth)
        path, headers, body = _request(command)
        response = client.post(path, data=body, headers=headers)
        answer = response.get_json()
        assert response.status_code == 200, (command, answer)
        assert answer["status"] in ("placed", "success"), (command, answer)
        ran += 1
    assert ran >= 10


def test_the_answer_is_documented_as_it_is_sent(paper: tuple[FlaskClient, Path]) -> None:
    """The sample answer under "Try it" has the real answer's fields, and each field of the
    answer and of its orders has a row under "The answer"."""
    body = json.dumps({"secret": SECRET, "symbol": "NSE:SBIN", "action": "buy",
                       "quantity": "1", "alert_id": "reference-shape"})
    response = paper[0].post("/webhook/tradingview", data=body, content_type="text/plain")
    answer = response.get_json()
    assert response.status_code == 200, answer
    sample = re.findall(r"```json\n(.*?)```", _section("Try it on the paper bridge"), re.S)[0]
    documented = json.loads(sample)
    assert answer.keys() == documented.keys()
    assert answer["orders"][0].keys() == documented["orders"][0].keys()
    rows = _rows(_section("The answer"))
    assert not _missing({*answer, *answer["orders"][0]}, rows)
