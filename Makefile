# The two commands of the README. Everything runs from a virtualenv in .venv.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: demo test setup browser format clean

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

setup: $(VENV)/.installed

## make demo: set up, migrate, load demo data (SQLite by default) and run web + django-q2 cluster.
# The demo runs with DEBUG on: the repository's key, the simulated gateway and the console
# SMS and e-mail backends, which a process with DEBUG off refuses to start with (docs/deploy.md);
# seed_demo too refuses to run without it (it prints the staff logins and keys it made).
DEMO_ENV := DEBUG=1
demo: setup
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo --if-empty
	$(DEMO_ENV) $(BIN)/python manage.py run_demo --host $(HOST) --port $(PORT)

# The admin's browser tests drive Debian's Chromium (Playwright's own download is not used);
# the CJK font lets the Chinese admin's screenshots show characters instead of boxes.
BROWSER_PKGS := chromium fonts-noto-cjk
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! [ -d /usr/share/fonts/opentype/noto ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS) >/dev/null; \
	  else echo "Install Debian's packages first: sudo apt-get install $(BROWSER_PKGS)"; exit 1; fi; \
	fi

## make test: lint, format check, the import contracts (.importlinter) and the whole test suite (PostgreSQL when DATABASE_URL points there).
test: setup browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 media test-artifacts
