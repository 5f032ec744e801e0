# resnet-repro: every target that runs the project installs it first when .venv is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# SEEDS: seeds of a sweep target, as 0,1,2; empty: the target's own default (below)
SEEDS ?=
DATA ?= data
OUT ?= outputs
SWEEP_ARGS ?=
comma := ,

.PHONY: install test test-fast fuzz lint format reproduce-cifar reproduce-cifar-quick reproduce-resnet1202 report \
        bench bench-data bench-memory bench-gpu tensorboard clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev,launchers]'
	touch $@

test: install  ## the whole suite, slow tests included (what CI runs)
	$(PY) -m pytest

test-fast: install  ## the suite without the tests marked slow
	$(PY) -m pytest -m "not slow"

# issue 25: hostile run directories, sweeps, exports and checkpoints through every reading entry point (tests/fuzz.py)
FUZZ_EXAMPLES ?= 10000
fuzz: install  ## the deep fuzzing profile: FUZZ_EXAMPLES generated cases; counts and findings in fuzz-report.json
	FUZZ_DEEP=1 FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_REPORT=fuzz-report.json $(PY) -m pytest tests/test_fuzz.py \
		-k "not watch" -p no:cacheprovider -q -W ignore::hypothesis.errors.HypothesisWarning
	$(PY) -c 'import json, sys; r = json.load(open("fuzz-report.json")); print(json.dumps(r["counts"], indent=1)); \
		sys.exit(1 if r["findings"] else 0)'

lint: install
	$(PY) -m ruff check src tests benchmarks hubconf.py
	$(PY) -m ruff format --check src tests benchmarks hubconf.py
	$(VENV)/bin/lint-imports  # the layers of pyproject.toml [tool.importlinter]

format: install
	$(PY) -m ruff check --fix src tests benchmarks hubconf.py
	$(PY) -m ruff format src tests benchmarks hubconf.py

# A sweep, then its report: bad input stops the sweep with exit 2 (no report); a sweep in which a run failed or
# diverged still gets its report, and make then exits with the sweep's non-zero code.
define sweep_then_report
	status=0; $(PY) -m resnet_repro.train -m $(1) seed=$(or $(SEEDS),$(3)) data.root=$(DATA) data.download=true \
		output_root=$(OUT) $(SWEEP_ARGS) || status=$$?; \
	if [ $$status -ne 2 ]; then $(PY) -m resnet_repro.report $(OUT)/$(2) || exit $$?; fi; exit $$status
endef

# Fig. 6, Table 6 and Fig. 7 of the paper: 9 networks x SEEDS (default 0), 64k iterations each, then the report.
# Resumable: run it again after an interruption. DATA: a CIFAR-10 folder (downloaded there when missing).
reproduce-cifar: install
	$(call sweep_then_report,experiment=fig6,cifar10,0)

# The same pipeline and report at a 2-core-CPU budget: plain-20, plain-56 and ResNet-56 x 3 seeds, 1,000 iterations
# each, the design that decides claims 1 and 2 (experiments/results/cifar10-quick/README.md).
reproduce-cifar-quick: install
	$(call sweep_then_report,experiment=quick progress_bar=false,cifar10-quick,0$(comma)1$(comma)2)

reproduce-resnet1202: install
	$(call sweep_then_report,experiment=resnet1202,cifar10,0)

report: install
	$(PY) -m resnet_repro.report $(OUT)/cifar10

bench-data: install
	$(PY) benchmarks/bench_data.py --data $(DATA)

PORT ?= 6006
HOST ?= localhost
tensorboard: install  ## make tensorboard [OUT=outputs] [PORT=6006] [HOST=0.0.0.0 to serve other machines]
	$(VENV)/bin/tensorboard --logdir $(OUT) --port $(PORT) --host $(HOST)

clean:
	rm -rf .pytest_cache .ruff_cache

bench: install  ## training speed: ours vs the reference loop (needs DATA)
	$(PY) benchmarks/bench_train.py --data $(DATA)

bench-memory: install
	$(PY) benchmarks/bench_memory.py

bench-gpu: install
	$(PY) benchmarks/bench_gpu.py --data $(DATA)
