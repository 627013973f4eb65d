# Two commands for a newcomer: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
WEB := src/shuzhi/web
VENDOR := $(WEB)/static/vendor
PYTEST_ARGS ?=

.PHONY: demo test lint venv vendor docs clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

vendor: $(VENDOR)/.installed

# htmx and ECharts come from npm at the versions pinned in package.json, no lock file.
$(VENDOR)/.installed: $(WEB)/package.json
	cd $(WEB) && npm install --no-package-lock --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp $(WEB)/node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx.min.js
	cp $(WEB)/node_modules/echarts/dist/echarts.min.js $(VENDOR)/echarts.min.js
	touch $@

demo: venv vendor
	$(BIN)/shuzhi demo build
	$(BIN)/shuzhi serve

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: venv vendor lint
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

docs: venv
	$(BIN)/shuzhi docs generate

clean:
	rm -rf $(VENV) $(WEB)/node_modules $(VENDOR)
