# The two commands of the README: `make run` (paper mode on 127.0.0.1:5000) and `make test`.
PYTHON ?= python3
VENV ?= .venv
ENV_FILE ?= .env
BIN := $(VENV)/bin

.PHONY: run test lint sandbox clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps

# A missing .env is made from .env.sample with a fresh random webhook secret and dashboard
# password, created readable by its owner only (it holds secrets from the first byte).
$(ENV_FILE):
	$(PYTHON) -c 'import os, secrets, sys; text = open(".env.sample").read(); \
	text = text.replace("\nWEBHOOK_SECRET=\n", "\nWEBHOOK_SECRET=" + secrets.token_urlsafe(24) + "\n", 1); \
	text = text.replace("\nADMIN_PASSWORD=\n", "\nADMIN_PASSWORD=" + secrets.token_urlsafe(18) + "\n", 1); \
	os.write(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), text.encode())' $(ENV_FILE)
	chmod 600 $(ENV_FILE)
	@echo "wrote $(ENV_FILE) with a new WEBHOOK_SECRET and ADMIN_PASSWORD"

run: $(VENV)/.run-deps $(ENV_FILE)
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
