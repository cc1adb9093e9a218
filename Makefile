# kpimon: the two commands that do all set-up on a fresh machine.
#   make demo   Kafka + Redis, a worker, the simulator, Prometheus and the board; prints the URLs
#   make test   lint, type checks and every test against the real services
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PEERS_VENV := .venv-peers
BIN := $(VENV)/bin
STACK := deploy/local/kpimon-local
STATE := .local-stack
WEB_PORT ?= 6066
SLACK_PORT ?= 8099
PROMETHEUS_PORT ?= 9090
BOARD_PORT ?= 6070
RATE ?= 50
GATEWAY_PORT ?= 8088
HUBSPOT_API_PORT ?= 8097
# The demo gateway's HubSpot app secret and token: random for each `make demo`, known to the sample sender only.
DEMO_HUBSPOT_ENV = KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET=$(DEMO_SECRET) KPIMON_GATEWAY_HUBSPOT_ACCESS_TOKEN=$(DEMO_TOKEN)
HISTORY ?= 35d

.PHONY: help install tools browser stack demo stop test lint unit integration bench bench-alerts bench-peers bench-scale-out bench-latency bench-memory bench-scrape bench-board bench-gateway docs clean

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/kpimon: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

install: $(BIN)/kpimon  ## create .venv and install kpimon with its test tools

# Debian's packages; their services are not wanted (Alertmanager's would take 9093, the local
# Kafka controller's port): the ones installed here are disabled again where systemd runs.
tools:  ## promtool, amtool and prometheus for the deploy checks, openssl for the TLS tests (apt-get, first run only)
	@pkgs=""; \
	command -v prometheus >/dev/null && command -v promtool >/dev/null || pkgs="prometheus"; \
	command -v amtool >/dev/null || pkgs="$$pkgs prometheus-alertmanager"; \
	command -v openssl >/dev/null || pkgs="$$pkgs openssl"; \
	[ -n "$$pkgs" ] || exit 0; \
	sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	echo "installing Debian's$$pkgs with apt-get (for promtool, amtool, prometheus and openssl)..."; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkgs >/dev/null || \
		{ echo "apt-get could not install$$pkgs; install them by hand"; exit 1; }; \
	if [ -d /run/systemd/system ]; then $$sudo systemctl disable --now $$pkgs >/dev/null 2>&1 || true; fi; \
	promtool --version 2>&1 | head -n 1; amtool --version 2>&1 | head -n 1

# The board's browser tests drive Debian's chromium through its chromium-driver (selenium, pinned in pyproject.toml).
browser:  ## chromium and chromium-driver for the board's browser tests (apt-get, first run only)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && exit 0; \
	sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	echo "installing Debian's chromium and chromium-driver with apt-get (for the board's browser tests)..."; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null || \
		{ echo "apt-get could not install chromium and chromium-driver; install them by hand"; exit 1; }; \
	chromium --version

stack:  ## start (or reuse) the local Kafka broker and Redis
	$(STACK) up

demo: DEMO_SECRET := $(shell od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
demo: DEMO_TOKEN := $(shell od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
demo: install tools stack  ## run the monitor: Kafka, Redis, a worker, the demo simulator (HISTORY=35d of the past first), the webhook gateway, Prometheus and the board
	@mkdir -p $(STATE)/logs
	@$(MAKE) --no-print-directory stop-demo
	@nohup $(BIN)/python -m alerts.testing --port $(SLACK_PORT) --log $(STATE)/logs/slack.jsonl \
		> $(STATE)/logs/slack.log 2>&1 & echo $$! > $(STATE)/demo-slack.pid
	@KPIMON_CONFIG_FILE=deploy/examples/kpimon.yaml KPIMON_DATA_DIR=$(STATE)/kpimon-data KPIMON_WEB_PORT=$(WEB_PORT) \
		KPIMON_RULES_FILE=deploy/examples/alerts.yaml \
		SLACK_SALES_WEBHOOK_URL=http://127.0.0.1:$(SLACK_PORT)/slack OPS_WEBHOOK_URL=http://127.0.0.1:$(SLACK_PORT)/ops \
		nohup $(BIN)/kpimon worker > $(STATE)/logs/worker.log 2>&1 & echo $$! > $(STATE)/demo-worker.pid
	@KPIMON_CONFIG_FILE=deploy/examples/kpimon.yaml \
		nohup $(BIN)/kpimon simulate --rate $(RATE) --history $(HISTORY) > $(STATE)/logs/simulator.log 2>&1 & echo $$! > $(STATE)/demo-simulator.pid
	@KPIMON_CONFIG_FILE=deploy/examples/kpimon.yaml KPIMON_GATEWAY_PORT=$(GATEWAY_PORT) $(DEMO_HUBSPOT_ENV) \
		KPIMON_GATEWAY_HUBSPOT_API_URL=http://127.0.0.1:$(HUBSPOT_API_PORT) \
		nohup $(BIN)/kpimon gateway > $(STATE)/logs/gateway.log 2>&1 & echo $$! > $(STATE)/demo-gateway.pid
	@sed -e 's/127.0.0.1:6066/127.0.0.1:$(WEB_PORT)/' -e 's#- rules/#- $(CURDIR)/deploy/prometheus/rules/#' \
		deploy/prometheus/prometheus.demo.yml > $(STATE)/prometheus.yml
	@nohup prometheus --config.file=$(STATE)/prometheus.yml --storage.tsdb.path=$(STATE)/prometheus \
		--web.listen-address=127.0.0.1:$(PROMETHEUS_PORT) > $(STATE)/logs/prometheus.log 2>&1 & echo $$! > $(STATE)/demo-prometheus.pid
	@nohup $(BIN)/kpimon board --config deploy/examples/kpimon.yaml --port $(BOARD_PORT) \
		--prometheus-url http://127.0.0.1:$(PROMETHEUS_PORT) > $(STATE)/logs/board.log 2>&1 & echo $$! > $(STATE)/demo-board.pid
	@$(BIN)/python deploy/local/wait_for_activity.py --port $(WEB_PORT) --timeout 180 --config deploy/examples/kpimon.yaml
	@echo "sending the HubSpot sample webhooks (deploy/gateway/samples/hubspot), signed, to the gateway:"
	@$(DEMO_HUBSPOT_ENV) $(BIN)/python -m streams.gateway.testing --gateway http://127.0.0.1:$(GATEWAY_PORT) \
		--api-port $(HUBSPOT_API_PORT) --samples deploy/gateway/samples/hubspot
	@echo
	@echo "kpimon is running:"
	@echo "  board        http://127.0.0.1:$(BOARD_PORT)/board  (one team: /board/emea; a TV: full screen, it rotates)"
	@echo "  metrics      http://127.0.0.1:$(WEB_PORT)/metrics"
	@echo "  prometheus   http://127.0.0.1:$(PROMETHEUS_PORT)  (scrapes the worker every second; the board reads it)"
	@echo "  goals        http://127.0.0.1:$(PROMETHEUS_PORT)/graph?g0.expr=kpimon_goal_attainment_ratio&g0.tab=1  (attainment, recorded every 5 s)"
	@echo "  today/rep    curl -s http://127.0.0.1:$(WEB_PORT)/metrics | grep 'kpimon_calls{.*scope=\"rep\".*window=\"today\"'"
	@echo "  alerts       curl -s http://127.0.0.1:$(WEB_PORT)/metrics | grep 'kpimon_alert_state{.*} 1'"
	@echo "  gateway      http://127.0.0.1:$(GATEWAY_PORT)/metrics (webhooks in: docs/gateway.md)"
	@echo "  messages     http://127.0.0.1:$(SLACK_PORT)/requests (a local stand-in for Slack; rules: deploy/examples/alerts.yaml)"
	@echo "  logs         $(STATE)/logs/worker.log, simulator.log, gateway.log, prometheus.log, board.log"
	@echo "  stop         make stop"

stop-demo:
	@for name in board prometheus gateway simulator worker slack; do \
		pidfile=$(STATE)/demo-$$name.pid; \
		if [ -f $$pidfile ] && kill -0 $$(cat $$pidfile) 2>/dev/null; then \
			kill $$(cat $$pidfile); while kill -0 $$(cat $$pidfile) 2>/dev/null; do sleep 0.2; done; \
			echo "stopped the demo $$name"; fi; \
		rm -f $$pidfile; done

stop: stop-demo  ## stop the demo, Kafka and Redis
	$(STACK) down

lint: install  ## ruff, mypy and the import-layer contract
	$(BIN)/ruff check schemas streams alerts tests bench deploy
	$(BIN)/ruff format --check schemas streams alerts tests bench deploy
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install  ## unit tests only (no services needed)
	$(BIN)/pytest tests/unit -q

test: install tools browser stack lint  ## everything CI runs: lint, type checks, unit and integration tests
	$(BIN)/pytest -q

bench: install stack  ## the throughput benchmark (see docs/benchmarks.md)
	$(BIN)/python bench/throughput.py

bench-alerts: install stack  ## alert latency: injected drop to the webhook request (docs/benchmarks.md)
	$(BIN)/python bench/alert_latency.py

# Quix Streams caps pydantic and pydantic-settings below kpimon's pins: it gets a venv of its own, in which
# bench/peers.py runs its consumer (bench/peers_quix.py). The stamp is the requirements file it was made from.
$(PEERS_VENV)/requirements-peers.txt: bench/requirements-peers.txt
	$(PYTHON) -m venv --clear $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet -r bench/requirements-peers.txt
	cp bench/requirements-peers.txt $@

bench-peers: install stack $(PEERS_VENV)/requirements-peers.txt  ## kpimon, Quix Streams (in .venv-peers), Faust and a bare loop on the same events (docs/benchmarks.md)
	$(BIN)/python bench/peers.py --quix-python $(PEERS_VENV)/bin/python

bench-scale-out: install stack  ## one kpimon worker against two in one group on the same events (docs/benchmarks.md)
	$(BIN)/python bench/peers.py --scale-out 2

bench-latency: install stack  ## producer ack to the value on /metrics at 5,000 events/s (docs/benchmarks.md)
	$(BIN)/python bench/latency.py

bench-memory: install stack  ## bytes per remembered id and entity, RSS at a constant rate, restart times (docs/benchmarks.md)
	$(BIN)/python bench/memory.py

bench-scrape: install stack  ## /metrics at 1,000 reps while ingesting: scrape time, size, loop stalls (docs/benchmarks.md)
	$(BIN)/python bench/scrape.py

bench-board: install tools browser stack  ## event produced -> shown on the board, p50/p99 over 100 events (docs/benchmarks.md)
	$(BIN)/python bench/board_latency.py

bench-gateway: install stack  ## webhook requests and events/s, p50/p99 latency: kpimon gateway against a bare aiohttp handler (docs/benchmarks.md)
	$(BIN)/python bench/gateway.py


clean:  ## remove the venvs and the local stack's data
	$(STACK) reset
	rm -rf $(VENV) $(PEERS_VENV)
