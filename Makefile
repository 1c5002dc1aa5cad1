# The two set-up commands of the README: `make demo` and `make test`. Each installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
SITE ?= config/dijon
PORT ?= 4840

.PHONY: demo test lint bootstrap bench clean

bootstrap:
	./tools/bootstrap.sh

demo: bootstrap
	$(VENV)/bin/cityscada demo --site $(SITE) --port $(PORT)

lint: bootstrap
	$(VENV)/bin/ruff check scada drivers historian hmi tests bench tools
	$(VENV)/bin/lint-imports
	$(PY) tools/check_imports.py
	$(VENV)/bin/mypy

test: bootstrap
	$(VENV)/bin/ruff check scada drivers historian hmi tests bench tools
	$(VENV)/bin/lint-imports
	$(PY) tools/check_imports.py
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
