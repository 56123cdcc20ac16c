# Newcomer entry points: `make run` and `make test` each set up .venv first (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_STAMP := $(VENV)/.sentibot-torch
RUN_STAMP := $(VENV)/.sentibot-run
STAMP := $(VENV)/.sentibot-installed

.PHONY: setup setup-run run test test-postgres lint bench clean

# Developers: what running needs plus the dev tools (pytest, ruff, the benchmarks' peers).
setup: $(STAMP)
# Running only (`make run`): no dev tools.
setup-run: $(RUN_STAMP)

# torch first: the CPU build unless a GPU is present (an unpinned torch would pull a multi-GB CUDA
# build). `torch==2.13.0+cpu` exists only as a local/CPU-index wheel, so PyPI never answers it.
$(TORCH_STAMP):
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@if $(PY) -c "import torch" 2>/dev/null; then echo "torch already installed"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then $(PIP) install -q "torch>=2.2"; \
	else $(PIP) install -q "torch==2.13.0+cpu" 2>/dev/null \
	  || $(PIP) install -q "torch>=2.2" --index-url https://download.pytorch.org/whl/cpu; fi
	touch $(TORCH_STAMP)

$(RUN_STAMP): pyproject.toml | $(TORCH_STAMP)
	$(PIP) install -q -e ".[bert]"
	touch $(RUN_STAMP)

# The dev install includes everything running needs, so it marks that done too.
$(STAMP): pyproject.toml | $(TORCH_STAMP)
	$(PIP) install -q -e ".[bert,dev]"
	touch $(STAMP) $(RUN_STAMP)

run: setup-run
	$(VENV)/bin/sentibot up

test: setup
	$(PY) -m pytest -q

# The storage tests once more on a throw-away PostgreSQL server (needs PostgreSQL's initdb and
# pg_ctl; or set SENTIBOT_TEST_POSTGRES_URL to a server of yours). Not part of CI.
test-postgres: setup
	$(PIP) install -q -e ".[postgres]"
	bash tests/storage/on_postgres.sh $(PY) -m pytest -q tests/storage

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: setup
	for b in classifier bootstrap storage label_queue bot bert active_learning; do $(PY) benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
