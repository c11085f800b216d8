# make demo   set up .venv (once) and train PPO on CartPole-v1, 8 seeds in one compiled program
# make test   set up .venv (once) and run the test suite (what CI runs)
# make test-slow  the long learning tests (@pytest.mark.slow) that `make test` leaves out
# make bench  throughput benchmarks (tables + JSON under benchmarks/results/)
# make test-newest  set up .venv-py312 (once: Python 3.12, the newest JAX, constraints-py312.txt) and run
#                   the subset of the suite listed in tests/newest.txt (CI runs it after `make test`);
#                   VENV312=DIR keeps that virtualenv elsewhere (this checkout is put first on PYTHONPATH)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.jaxrl-installed
# python3.12 on PATH, else pyenv's
PYTHON312 ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12; do \
  $$p -c '' 2>/dev/null && echo $$p && break; done)
VENV312 ?= .venv-py312
STAMP312 := $(VENV312)/.jaxrl-installed
PYTEST_ARGS := -q -n 2 --timeout 600 -p no:cacheprovider
# learning runs over about a minute on 2 CPU cores carry @pytest.mark.slow: `make test` (CI) leaves them
# out, `make test-slow` runs only them
FAST := -m "not slow"

.PHONY: demo test test-slow test-newest bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,stats]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/jaxrl train ppo --env gymnax:CartPole-v1 --num-seeds 8 --total-steps 500000 \
	  --out runs/demo-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP)
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest $(PYTEST_ARGS) $(FAST) --durations=15

test-slow: $(STAMP)
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -q -n 2 --timeout 3600 -p no:cacheprovider -m slow --durations=0

$(STAMP312): pyproject.toml constraints-py312.txt
	@test -n "$(PYTHON312)" || { echo "make test-newest needs Python 3.12: set PYTHON312=/path/to/python3.12"; exit 2; }
	$(PYTHON312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install -q --upgrade pip
	$(VENV312)/bin/python -m pip install -q --no-deps -r constraints-py312.txt
	$(VENV312)/bin/python -m pip install -q --no-deps -e .
	touch $(STAMP312)

test-newest: $(STAMP312)
	PYTHONPATH=$(CURDIR) JAX_PLATFORMS=cpu $(VENV312)/bin/python -m pytest $(PYTEST_ARGS) $(FAST) --durations=10 \
	  $$(sed 's/#.*//' tests/newest.txt)

bench: $(STAMP)
	$(BIN)/python benchmarks/ppo_throughput.py

clean-venv:
	rm -rf $(VENV) $(VENV312)
