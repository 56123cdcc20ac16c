"""Encoder / pooling / head composition: padding never changes the result."""

import numpy as np
import pytest
import torch

from classifier.modules import (
    EmbeddingEncoder,
    LinearHead,
    MeanPooling,
    SentenceClassifierModule,
    WordTextEncoder,
    build_model,
    get_backbone,
)
from classifier.tokenizer import Vocab


@pytest.fixture
def setup():
    torch.manual_seed(0)
    vocab = Vocab.build(["the cat sat on the mat", "a dog barked loudly"], bigram_buckets=32)
    encoder = WordTextEncoder(vocab)
    emb = EmbeddingEncoder(vocab.size, 8)
    module = SentenceClassifierModule(emb, MeanPooling(), LinearHead(8, 3)).eval()
    return encoder, module


def test_mean_pooling_ignores_padding():
    pooling = MeanPooling()
    tokens = torch.randn(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    base = pooling({"token_embeddings": tokens, "attention_mask": mask})["sentence_embedding"]
    # Garbage in padded positions plus extra padding columns must not change anything.
    noisy = torch.cat([tokens, torch.randn(2, 5, 4)], dim=1)
    noisy[0, 2] = 1e6
    wide_mask = torch.cat([mask, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    again = pooling({"token_embeddings": noisy, "attention_mask": wide_mask})["sentence_embedding"]
    torch.testing.assert_close(base, again)
    torch.testing.assert_close(base[1], tokens[1, 0])
    torch.testing.assert_close(base[0], tokens[0, :2].mean(dim=0))


def test_empty_text_pools_to_zero():
    out = MeanPooling()(
        {"token_embeddings": torch.ones(1, 2, 3), "attention_mask": torch.zeros(1, 2)}
    )
    assert torch.equal(out["sentence_embedding"], torch.zeros(1, 3))


def test_flat_and_padded_batches_agree(setup):
    encoder, module = setup
    seqs = encoder.tokenize(["the cat sat", "a dog", "", "the mat the cat a dog barked"])
    with torch.no_grad():
        flat = module(encoder.collate(seqs))
        padded = module(encoder.collate_padded(seqs))
        wider = module(encoder.collate_padded(seqs, pad_to=40))
    torch.testing.assert_close(flat, padded)
    torch.testing.assert_close(flat, wider)


def test_batch_composition_does_not_change_a_row(setup):
    encoder, module = setup
    seqs = encoder.tokenize(["the cat sat on the mat", "dog"])
    with torch.no_grad():
        alone = module(encoder.collate(seqs[:1]))
        together = module(encoder.collate(seqs))
    torch.testing.assert_close(alone[0], together[0])


def test_build_model_dispatches_on_backbone():
    config = {
        "backbone": "embedding",
        "labels": ["a", "b"],
        "args": {"vocab_size": 10, "embedding_dim": 4},
    }
    module = build_model(config)
    assert module.head.linear.out_features == 2
    assert module.encoder.embedding.weight.shape == (10, 4)


def test_unknown_backbone_is_a_clear_key_error():
    with pytest.raises(KeyError, match="unknown backbone 'nope'"):
        get_backbone("nope")


def test_collate_offsets():
    encoder = WordTextEncoder(Vocab.build(["a b c"]))
    batch = encoder.collate([np.array([2, 3]), np.array([], dtype=np.int64), np.array([4])])
    assert batch["input_ids"].tolist() == [2, 3, 4]
    assert batch["offsets"].tolist() == [0, 2, 2]
