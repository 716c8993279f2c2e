# The two commands of the README: `make run` (paper mode on 127.0.0.1:5000) and `make test`.
PYTHON ?= python3
VENV ?= .venv
ENV_FILE ?= .env
BIN := $(VENV)/bin

.PHONY: run test lint sandbox clean api-key

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
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
api-key: $(ENV_FILE)
	@$(PYTHON) -c 'import re, secrets, sys; path = sys.argv[1]; text = open(path).read(); \
	has = re.search(r"^[ \t]*(export[ \t]+)?API_KEY[ \t]*=", text, re.M); \
	gap = "" if not text or text.endswith("\n") else "\n"; \
	line = "\n# Key of the REST API at /api/v1 (apikey in each call); empty: the API is off.\nAPI_KEY=" + secrets.token_urlsafe(32) + "\n"; \
	has or open(path, "a").write(gap + line); \
	has or sys.stdout.write("added a new API_KEY to " + path + "\n")' $(ENV_FILE)

run: $(VENV)/.run-deps $(ENV_FILE) api-key
	ENV_FILE=$(ENV_FILE) $(BIN)/python -m bridge banner
	exec env ENV_FILE=$(ENV_FILE) $(BIN)/gunicorn -c deploy/gunicorn.conf.py wsgi:app

test: $(VENV)/.dev-deps
	$(BIN)/pytest

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check bridge tests bench wsgi.py deploy
	$(BIN)/mypy

# A standalone Kotak sandbox for drills (prints the credentials it accepts).
sandbox: $(VENV)/.run-deps
	exec $(BIN)/python -m bridge.kotak.sandbox --port 8899

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
