# Neurectomy — `make run` sets everything up and serves; `make test` sets up and runs every check.
# Set-up is incremental: a second run finds its stamps and skips what is done (seconds, not minutes).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMPS := $(VENV)/.stamps
LLAMA_CPP_VERSION := 0.3.36
PKGS := neurectomy api orchestrator agents bridges ryot sigmalang vault
export HF_HUB_OFFLINE := 1

.PHONY: run test setup system-deps lint format typecheck imports unit ide bench clean

run: setup
	$(VENV)/bin/neurectomy serve

test: system-deps setup lint typecheck imports unit ide

# The planner's routing encoder (a static distillation of the packaged MiniLM, ~30-50 s once per machine,
# cached under the user cache dir; ~1 s when cached).
# Then the call path's modules compiled with mypyc (agents/_compiled.py: ~6 min the first time, then only
# when their sources change; loaded only while they match them). A failed build leaves them as Python: the
# service runs, and `make test` fails on the check that the build is in use.
setup: $(STAMPS)/project
	$(PY) -m vault.static_embedding > /dev/null
	$(PY) deploy/compile_hot_path.py || echo "(the call path runs as Python)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# llama-cpp-python, built from source with AMX off (the native build crashes on this CPU).
$(STAMPS)/llama-cpp: deploy/ensure_llama_cpp.sh deploy/check_llama_cpp.py constraints.txt | $(PY)
	$(PIP) install --quiet -c constraints.txt numpy typing-extensions diskcache jinja2
	deploy/ensure_llama_cpp.sh $(PY) $(LLAMA_CPP_VERSION)
	@mkdir -p $(STAMPS) && touch $@

# Everything else (torch pinned by constraints.txt), then the packaged model and a one-token smoke test.
$(STAMPS)/project: pyproject.toml constraints.txt $(STAMPS)/llama-cpp
	$(PIP) install --quiet -c constraints.txt -e '.[server,dev]'
	$(PY) -m ryot.selfcheck
	@mkdir -p $(STAMPS) && touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: setup
	$(VENV)/bin/mypy

imports: setup
	$(VENV)/bin/lint-imports

# As root (CI), `system-deps` has installed chromium and promtool, so their tests must run, not skip.
unit: setup
	NEURECTOMY_REQUIRE_COMPILED=1 NEURECTOMY_REQUIRE_BROWSER=$$([ "$$(id -u)" = 0 ] && echo 1) $(PY) -m pytest

# Debian packages of the browser and alert-rule tests: chromium (driven by Playwright through its
# executable path; Playwright's own browser download is not used) and prometheus (promtool); and the
# Python headers mypyc compiles the call path against (python3-dev), when the interpreter has none.
# Installed when missing and root; otherwise those tests skip with the reason.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	$(PYTHON) -c "import os, sysconfig; raise SystemExit(not os.path.isfile(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
		|| missing="$$missing python3-dev"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing$$missing (apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "not installed:$$missing (needs root and apt-get): the browser/promtool tests skip; without the Python headers (python3-dev) the call path is not compiled and the test of its build fails"; \
	fi

# The VS Code extension (TypeScript): build and test its HTTP client with Node's test runner.
ide:
	cd ide/vscode && npm ci --no-audit --no-fund --loglevel=error && npm run compile && npm test

bench: setup
	$(PY) benchmarks/llm_path.py

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
