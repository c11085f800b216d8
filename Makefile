# make demo   set up .venv (once) and train PPO on CartPole-v1, 8 seeds in one compiled program
# make test   set up .venv (once) and run the test suite (what CI runs)
# make bench  throughput benchmarks (tables + JSON under benchmarks/results/)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.jaxrl-installed

.PHONY: demo test bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,stats]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/jaxrl train ppo --env gymnax:CartPole-v1 --num-seeds 8 --total-steps 500000 \
	  --out runs/demo-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP)
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -q -n 2 --timeout 600 -p no:cacheprovider --durations=15

bench: $(STAMP)
	$(BIN)/python benchmarks/ppo_throughput.py

clean-venv:
	rm -rf $(VENV)
