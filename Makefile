# The two commands of the README, `make run` (paper mode on 127.0.0.1:5000) and `make test`,
# and one target per everyday task (`make help` lists them). Each builds .venv first when it
# is missing, so no one types `.venv/bin/python -m ...`; .venv/bin/bridge is the same command.
PYTHON ?= python3
VENV ?= .venv
ENV_FILE ?= .env
BIN := $(VENV)/bin
# More options for a command, e.g. `make login ARGS="--account asha"`.
ARGS ?=
BRIDGE := env ENV_FILE=$(ENV_FILE) $(BIN)/bridge

.DEFAULT_GOAL := help
.PHONY: help run test lint sandbox clean api-key check doctor login banner signals notices \
	jobs squareoff-dry-run killswitch-on killswitch-off entries-allow

help: ## this list
	@echo "make <target>   (the bridge's own commands: .venv/bin/bridge --help)"
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-19s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The project itself goes in editable, without dependencies (they are pinned above): that
# is what puts the `bridge` command in $(BIN).
$(VENV)/.run-deps: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@ $(VENV)/.run-deps

# A missing .env is made from .env.sample with a fresh random webhook secret, REST API key
# and dashboard password, created readable by its owner only (it holds secrets from the
# first byte).
$(ENV_FILE):
	$(PYTHON) -c 'import os, secrets, sys; text = open(".env.sample").read(); \
	text = text.replace("\nWEBHOOK_SECRET=\n", "\nWEBHOOK_SECRET=" + secrets.token_urlsafe(24) + "\n", 1); \
	text = text.replace("\nAPI_KEY=\n", "\nAPI_KEY=" + secrets.token_urlsafe(32) + "\n", 1); \
	text = text.replace("\nADMIN_PASSWORD=\n", "\nADMIN_PASSWORD=" + secrets.token_urlsafe(18) + "\n", 1); \
	os.write(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), text.encode())' $(ENV_FILE)
	chmod 600 $(ENV_FILE)
	@echo "wrote $(ENV_FILE) with a new WEBHOOK_SECRET, API_KEY and ADMIN_PASSWORD"

# An .env written before the REST API existed has no API_KEY line: one is added with a fresh
# key. A line that is there, even empty (the API turned off on purpose), is left alone.
api-key: $(ENV_FILE) ## add an API_KEY to an .env made before the REST API existed
	@$(PYTHON) -c 'import re, secrets, sys; path = sys.argv[1]; text = open(path).read(); \
	has = re.search(r"^[ \t]*(export[ \t]+)?API_KEY[ \t]*=", text, re.M); \
	gap = "" if not text or text.endswith("\n") else "\n"; \
	line = "\n# Key of the REST API at /api/v1 (apikey in each call); empty: the API is off.\nAPI_KEY=" + secrets.token_urlsafe(32) + "\n"; \
	has or open(path, "a").write(gap + line); \
	has or sys.stdout.write("added a new API_KEY to " + path + "\n")' $(ENV_FILE)

# The banner (addresses, secret, password, a curl to try) is printed once, by a helper that
# waits until the server answers, so it comes after the start-up log lines, nearest the
# cursor. Its parent is gunicorn (the shell execs it): when gunicorn stops, so does it.
run: $(VENV)/.run-deps $(ENV_FILE) api-key ## start the bridge (paper mode unless .env says live)
	@$(BRIDGE) banner --after-start & \
	exec env ENV_FILE=$(ENV_FILE) $(BIN)/gunicorn -c deploy/gunicorn.conf.py wsgi:app

# The in-process tests on two workers (pytest-xdist: most of their time is spent waiting on
# the sandbox, the journal and background loops), then the end-to-end tests one at a time:
# they start gunicorn, sandboxes and a browser and kill processes, so they get the cores.
test: $(VENV)/.dev-deps ## run the whole test suite
	$(BIN)/pytest -n 2 -m "not e2e"
	$(BIN)/pytest -m e2e

check: $(VENV)/.run-deps $(ENV_FILE) ## check the settings and that the database answers
	@$(BRIDGE) check $(ARGS)

doctor: $(VENV)/.run-deps $(ENV_FILE) ## check the whole setup and say what to fix
	@$(BRIDGE) doctor $(ARGS)

login: $(VENV)/.run-deps $(ENV_FILE) ## log in to Kotak as a person (asks for the TOTP)
	@$(BRIDGE) login $(ARGS)

banner: $(VENV)/.run-deps $(ENV_FILE) ## print the webhook addresses, secret and a curl to try
	@$(BRIDGE) banner $(ARGS)

signals: $(VENV)/.run-deps $(ENV_FILE) ## what became of the latest signals
	@$(BRIDGE) signals $(ARGS)

notices: $(VENV)/.run-deps $(ENV_FILE) ## what the bridge told you (logins, square-offs, failures)
	@$(BRIDGE) notices $(ARGS)

jobs: $(VENV)/.run-deps $(ENV_FILE) ## the scheduler's next runs and last outcomes
	@$(BRIDGE) jobs $(ARGS)

squareoff-dry-run: $(VENV)/.run-deps $(ENV_FILE) ## show what a square-off would send now
	@$(BRIDGE) squareoff --dry-run $(ARGS)

killswitch-on: $(VENV)/.run-deps $(ENV_FILE) ## close-only mode: refuse new entries
	@$(BRIDGE) killswitch on

killswitch-off: $(VENV)/.run-deps $(ENV_FILE) ## trade normally again
	@$(BRIDGE) killswitch off

entries-allow: $(VENV)/.run-deps $(ENV_FILE) ## accept new intraday entries again after a square-off stopped them
	@$(BRIDGE) entries allow $(ARGS)

lint: $(VENV)/.dev-deps ## ruff and mypy
	$(BIN)/ruff check bridge tests bench wsgi.py deploy
	$(BIN)/mypy

# A standalone Kotak sandbox for drills (prints the credentials it accepts).
sandbox: $(VENV)/.run-deps ## a standalone Kotak sandbox on port 8899
	exec $(BIN)/python -m bridge.kotak.sandbox --port 8899

clean: ## remove .venv and the tools' caches (keeps .env and instance/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
