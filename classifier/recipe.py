"""What a training run needs: the recipe (saved with the model) and the run settings (not).

`TrainRecipe` holds the hyper-parameters that define a model: the same recipe, data and device
give the same weights, and every model card records its recipe so a retrain can reuse it.
`RunSettings` are properties of the machine the run happens on (device, threads, the feature
cache folder, the progress bar); they never change what is learnt beyond the device's own
numerics, and they are never saved.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class TrainRecipe:
    """Hyper-parameters; defaults tuned on the shared SemEval → TweetEval benchmark
    (`benchmarks/classifier.py`): lr 0.01 with linear decay over 5 epochs, class-balanced loss,
    no bigrams scored 0.652 macro-F1 against 0.634-0.640 for the unbalanced variants."""

    backbone: str = "embedding"
    epochs: int = 5  # budget; the lr decays linearly over it and early stopping may end sooner
    batch_size: int = 64
    lr: float = 0.01  # SparseAdam (embedding table); AdamW (head) uses head_lr or lr
    head_lr: float | None = None
    encoder_lr: float | None = None  # BERT finetune: the encoder's rate (None: the backbone's)
    seed: int = 0
    dev_fraction: float = 0.1
    patience: int = 2  # epochs without dev macro-F1 improvement before stopping
    # Reweight the loss by inverse label frequency (normalised to mean 1), on top of `weights`:
    # macro-F1 counts every label equally, so rare labels deserve more than their share.
    balance_classes: bool = True
    lr_decay: bool = True  # linear decay to 0 over `epochs` (fastText's), where the backbone allows
    max_tokens: int = 256
    embedding_dim: int = 64
    dropout: float = 0.2
    min_freq: int = 1
    max_vocab: int | None = 200_000
    # Hashed word bigrams (fastText style) are supported but off: on the shared SemEval →
    # TweetEval benchmark 100k buckets cost 0.015-0.03 macro-F1 in every paired run (they overfit
    # the training tweets) and a third more training time.
    bigram_buckets: int = 0
    # Negation scope marking (`classifier.tokenizer`): words up to this many after "not"/"n't"/…
    # become `not_<word>` tokens; 0 = off. Embedding backbone only; saved in vocab.json.
    negation_scope: int = 0
    bert_path: str | None = None  # the pretrained encoder's folder (None: the default package)
    bert_mode: str = "auto"  # auto | frozen | finetune (auto: finetune on CUDA, else frozen)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainRecipe:
        """The recipe a model card recorded. Keys this version does not know are left out: older
        cards also recorded the machine's settings (device, threads, cache folder) there."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def check(self) -> None:
        """Refuse values that would crash deep inside training with an obscure error."""
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs and batch_size must be at least 1 ({self.epochs}, {self.batch_size})"
            )
        if self.seed < 0:  # numpy's default_rng refuses negative seeds
            raise ValueError(f"seed must be 0 or more, got {self.seed}")
        if not 0.0 <= self.dev_fraction < 1.0:
            raise ValueError(f"dev_fraction must be in [0, 1), got {self.dev_fraction}")


@dataclass
class RunSettings:
    """Where and how this machine runs the training; never saved with the model."""

    device: str = "cpu"  # resolved already (`classifier.device.resolve_device`)
    # torch intra-op threads while training; None = the backbone's choice (1 for the embedding
    # backbone: its ops are tiny, and thread hand-offs cost more than they save, badly so when
    # other processes compete for the cores). Restored afterwards.
    threads: int | None = None
    # Frozen BERT only: a folder keeping the encoder's pooled vectors between runs
    # (`classifier.bert_features`), so a retrain encodes only texts it has not seen. The bot
    # passes DATA_DIR/cache/bert-features.
    feature_cache: str | None = None
    # Progress of the long steps (`classifier.progress`): a bar on a terminal, log lines
    # elsewhere. False: silent (the retrain worker reports epochs its own way).
    progress: bool | None = None
