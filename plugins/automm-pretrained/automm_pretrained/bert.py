"""A BERT encoder (post-norm Transformer) that loads Hugging Face BERT checkpoints, plus the
WordPiece tokeniser of the same folder, with no dependency on ``transformers``.

Parameter names follow the Hugging Face layout (``embeddings.word_embeddings.weight``,
``encoder.layer.3.attention.self.query.weight``, ...) so that a ``model.safetensors`` of a
``BertModel`` loads with ``load_state_dict``. Only what a sentence encoder needs is here:
absolute positions, one token type, GELU (erf), no pooler, no cross-attention.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BertConfig", "BertModel", "load_bert", "load_tokenizer", "masked_mean"]


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    pad_token_id: int = 0

    @classmethod
    def from_json(cls, path: str | Path) -> "BertConfig":
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
        if raw.get("model_type", "bert") != "bert" or raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{path}: not a plain BERT configuration (model_type={raw.get('model_type')!r}, "
                             f"hidden_act={raw.get('hidden_act')!r})")
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: only absolute position embeddings are supported")
        names = cls.__dataclass_fields__
        return cls(**{k: raw[k] for k in names if k in raw})


class _Embeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        hidden = (self.word_embeddings(ids) + self.position_embeddings(positions).unsqueeze(0)
                  + self.token_type_embeddings.weight[0])
        return self.dropout(self.LayerNorm(hidden))


class _SelfAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, hidden: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden.shape

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.query(hidden)), heads(self.key(hidden)),
                                             heads(self.value(hidden)), attn_mask=attend[:, None, None, :],
                                             dropout_p=self.dropout_p if self.training else 0.0)
        return out.transpose(1, 2).reshape(batch, length, width)


class _AddNorm(nn.Module):
    """``LayerNorm(x + dropout(dense(h)))`` (BERT's post-norm residual)."""

    def __init__(self, in_size: int, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(in_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(hidden)))


class _Attention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = _SelfAttention(config)
        self.output = _AddNorm(config.hidden_size, config)

    def forward(self, hidden: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(hidden, attend), hidden)


class _Intermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(hidden))


class _Layer(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = _Attention(config)
        self.intermediate = _Intermediate(config)
        self.output = _AddNorm(config.intermediate_size, config)

    def forward(self, hidden: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        hidden = self.attention(hidden, attend)
        return self.output(self.intermediate(hidden), hidden)


class _Encoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(_Layer(config) for _ in range(config.num_hidden_layers))


class BertModel(nn.Module):
    """``forward(ids, attend, first_trainable=0)`` → last hidden states (B, L, H).

    ``attend`` is (B, L) bool, True at real tokens. Layers below ``first_trainable`` (and
    the embeddings, when ``first_trainable > 0``) run without gradients."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)

    @property
    def num_layers(self) -> int:
        return len(self.encoder.layer)

    def forward(self, ids: torch.Tensor, attend: torch.Tensor, first_trainable: int | None = None) -> torch.Tensor:
        first = 0 if first_trainable is None else int(first_trainable)
        with torch.set_grad_enabled(torch.is_grad_enabled() and first == 0):
            hidden = self.embeddings(ids)
        for index, layer in enumerate(self.encoder.layer):
            with torch.set_grad_enabled(torch.is_grad_enabled() and index >= first):
                hidden = layer(hidden, attend)
        return hidden


def masked_mean(hidden: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, L, H) over the positions where ``attend`` (B, L) is True."""
    weights = attend.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def load_bert(folder: str | Path) -> BertModel:
    """A :class:`BertModel` with the weights of ``folder/model.safetensors`` (eval mode)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    model = BertModel(BertConfig.from_json(folder / "config.json"))
    state = load_file(str(folder / "model.safetensors"))
    state = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("pooler.") and not k.endswith("position_ids")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder}: checkpoint does not match BERT: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


def load_tokenizer(folder: str | Path, max_length: int):
    """The folder's ``tokenizer.json`` (a :mod:`tokenizers` WordPiece tokeniser) truncating to
    ``max_length`` tokens ([CLS] and [SEP] included) and not padding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=int(max_length))
    return tokenizer
