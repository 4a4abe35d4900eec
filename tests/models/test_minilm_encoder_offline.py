"""The optional MiniLM prompt encoder's pieces, on a tiny random BERT (no package needed)."""
from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

from engine.models.gan import Discriminator, GanConfig, Generator
from engine.models.minilm import MiniLM, MiniLMPromptEncoder, WordPiece, load_minilm

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "dog", "face", "red", "heart", "##s", "gr", "##in", "##ning", ",", "!"]
CFG = {"hidden_size": 8, "layer_norm_eps": 1e-12, "vocab_size": len(VOCAB), "max_position_embeddings": 16,
       "type_vocab_size": 2, "num_attention_heads": 2, "intermediate_size": 16, "num_hidden_layers": 2}


def test_wordpiece_greedy_longest_match():
    wp = WordPiece(VOCAB)
    ids = wp.tokenize("Grinning dogs, RED héart!")
    assert [VOCAB[i] for i in ids] == ["[CLS]", "gr", "##in", "##ning", "dog", "##s", ",", "red", "heart", "!", "[SEP]"]
    assert [VOCAB[i] for i in wp.tokenize("cat")] == ["[CLS]", "[UNK]", "[SEP]"]


def _hf_state(model: MiniLM) -> dict[str, torch.Tensor]:
    """Our weights under Hugging Face BertModel names (what model.safetensors holds)."""
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "o": "attention.output.dense", "ln1": "attention.output.LayerNorm", "ff1": "intermediate.dense",
             "ff2": "output.dense", "ln2": "output.LayerNorm"}
    out = {"embeddings.word_embeddings.weight": model.word.weight, "embeddings.position_embeddings.weight": model.pos.weight,
           "embeddings.token_type_embeddings.weight": model.token_type.weight,
           "embeddings.LayerNorm.weight": model.ln.weight, "embeddings.LayerNorm.bias": model.ln.bias}
    for i, layer in enumerate(model.layers):
        for short, long in names.items():
            mod = getattr(layer, short)
            out[f"encoder.layer.{i}.{long}.weight"] = mod.weight
            out[f"encoder.layer.{i}.{long}.bias"] = mod.bias
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def test_loads_a_bert_folder_and_embeds_normalised_padding_invariant(tmp_path):
    torch.manual_seed(0)
    src = MiniLM(CFG)
    save_file(_hf_state(src), str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(CFG))
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB))
    load_minilm.cache_clear()
    wp, model = load_minilm(str(tmp_path))
    alone = model.embed([wp.tokenize("red heart")])
    padded = model.embed([wp.tokenize("red heart"), wp.tokenize("grinning dogs, red heart!")])
    assert torch.allclose(alone[0], padded[0], atol=1e-5)  # the mask hides padding
    assert torch.allclose(padded.norm(dim=1), torch.ones(2), atol=1e-5)
    enc = MiniLMPromptEncoder(str(tmp_path))
    batch = enc.batch(["dog face", "red heart", "dog face"])
    assert batch["features"].shape == (3, 8) and torch.equal(batch["features"][0], batch["features"][2])
    load_minilm.cache_clear()


def test_gan_accepts_sentence_features():
    cfg = GanConfig(size=16, nz=4, ngf=4, ndf=4, cond_dim=6, tokenizer={"kind": "minilm"})
    g, d = Generator(cfg), Discriminator(cfg)
    feats = {"features": torch.nn.functional.normalize(torch.randn(2, 384), dim=1)}
    x = g(torch.randn(2, 4), feats)
    assert x.shape == (2, 4, 16, 16) and d(x, feats).shape == (2,)
