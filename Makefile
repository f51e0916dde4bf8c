# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

# CITY=full runs the whole metropolis instead (citygate-sim city: 1,500 cabinets, docs/scaling.md),
# with its junctions, cameras, vehicles and parking; AGENTS=2 runs two of its cabinets with real agents
# PORT=8090 serves the demo's collector there (default 8080); SPEED=60 runs its clock an hour a minute
demo: $(STAMP)
ifeq ($(CITY),full)
	$(VENV)/bin/citygate-sim city $(if $(AGENTS),--agents $(AGENTS))
else
	$(VENV)/bin/citygate-sim demo $(if $(PORT),--port $(PORT)) $(if $(SPEED),--speed $(SPEED))
endif

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# Most tests wait on real time, sockets and subprocesses (CPU is a third of their wall time), so
# four workers fit two cores: on this 2-core machine, back to back, the agent, ble, lighting,
# meters and modbus tests took 75 s on 2 workers and 59 s on 4. Each file stays on one worker
# (module fixtures are built once, tests run in file order); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 4

test: $(STAMP) lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	for b in bench/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
