# kesu: `make serve` runs the daemon, `make test` runs every test (installing what they need).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: serve test install install-test servers bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

serve: install
	$(BIN)/kesu migrate
	$(BIN)/kesu model ensure
	$(BIN)/kesu serve

# Dovecot, Chromium, a CJK font and a running PostgreSQL: the real servers the tests talk to.
servers:
	bash .ci/install-servers

test: install-test servers
	$(BIN)/python -m pytest

bench: install-test servers
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info artifacts
