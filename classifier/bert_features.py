"""On-disk store of a frozen BERT encoder's pooled vectors, kept between training runs.

A frozen encoder never changes, so the vector it gives a text never changes either. Training in
`frozen` mode encodes every training text once per run; a retrain re-reads the whole bootstrap
corpus (tens of thousands of texts, minutes on a CPU) although only the few new labels are new.
`FeatureStore` keeps the vectors of one encoder in one safetensors file, keyed by a hash of each
text's token ids, so a later run encodes only the texts it has not seen.

The file is named after the encoder's weights hash and the device kind (CUDA encodes under bf16
autocast, the CPU in float32, so their vectors differ slightly); token ids already reflect the
tokenizer and the truncation length. A missing, unreadable or mismatched file is ignored (and
rewritten), never an error: the store only saves time. Writes go to a temporary file that is
renamed into place, so a reader never sees half a file. Only torch and safetensors.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger(__name__)

KEY_BYTES = 16
DEFAULT_MAX_BYTES = 1 << 30  # per encoder file: 384-d float32 vectors of ≈ 700k texts


def text_key(token_ids: bytes) -> bytes:
    """The store's key for one text: a 16-byte BLAKE2b digest of its token ids."""
    return hashlib.blake2b(token_ids, digest_size=KEY_BYTES).digest()


class FeatureStore:
    """Pooled vectors of one frozen encoder on one kind of device, in `folder`."""

    def __init__(
        self,
        folder: str | Path,
        encoder_sha256: str,
        device_kind: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ):
        self.folder = Path(folder)
        self.path = self.folder / f"{encoder_sha256[:32]}-{device_kind}.safetensors"
        self.max_bytes = max_bytes

    def load(self, dim: int) -> dict[bytes, Tensor]:
        """Every stored vector (on the CPU) by key; {} when there is no usable file."""
        from safetensors.torch import load_file

        if not self.path.is_file():
            return {}
        try:
            tensors = load_file(str(self.path))
            keys, vectors = tensors["keys"], tensors["vectors"]
            if keys.shape[1:] != (KEY_BYTES,) or vectors.shape != (keys.shape[0], dim):
                raise ValueError(f"shapes {tuple(keys.shape)} / {tuple(vectors.shape)}")
        except Exception as exc:  # a cache: any damage means "start again", never a failure
            log.warning("ignoring the unreadable feature store %s (%s)", self.path, exc)
            return {}
        return dict(zip((bytes(k) for k in keys.numpy()), vectors, strict=True))

    def save(self, vectors: dict[bytes, Tensor]) -> int:
        """Write `vectors` in their order (put this run's texts first) until `max_bytes` is
        reached; returns how many were written. A failed write (read-only or full disk) only
        logs: training goes on without the store."""
        from safetensors.torch import save_file

        keys: list[bytes] = []
        rows: list[Tensor] = []
        budget = self.max_bytes
        for key, vector in vectors.items():
            budget -= vector.numel() * 4
            if budget < 0:
                break
            keys.append(key)
            rows.append(vector.detach().float().cpu())
        if not rows:
            return 0
        packed = torch.frombuffer(bytearray(b"".join(keys)), dtype=torch.uint8)
        tensors = {"keys": packed.view(len(keys), KEY_BYTES), "vectors": torch.stack(rows)}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".features-", suffix=".tmp", dir=self.folder)
            os.close(fd)
            try:
                save_file(tensors, tmp, metadata={"format": "pt"})
                os.replace(tmp, self.path)
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not write the feature store %s (%s)", self.path, exc)
            return 0
        return len(keys)
