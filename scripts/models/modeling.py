"""Small decoder LMs written after the Hugging Face `transformers` structure.

Two families:
  * LlamaForCausalLM-style: RMSNorm, rotary embeddings (rotate_half), grouped-query attention
    (repeat_kv), SwiGLU MLP, untied lm_head.
  * GPT2LMHeadModel-style: learned positions, LayerNorm, fused QKV (c_attn, Conv1D layout),
    gelu_new (tanh approximation), tied embeddings.

Both take (input_ids, attention_mask, position_ids, past_key_values) and return
(logits, presents) where presents is a list of (key, value) with shape
[batch, num_kv_heads, past_len + seq_len, head_dim].

The attention mask is built the way HF does: a causal mask of 0 / finfo(dtype).min for the new
queries against all (past + new) keys, then key positions whose attention_mask is 0 are filled with
finfo(dtype).min (HF `_prepare_4d_causal_attention_mask`). That makes left-padded batches work.

Vocabulary: byte-level, 256 bytes + BOS=256, EOS=257, PAD=258 -> vocab 259 (no padding of the
embedding matrix).
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

BOS, EOS, PAD = 256, 257, 258
VOCAB = 259


# --------------------------------------------------------------------------- masks

def make_4d_mask(attention_mask, q_len, past_len, dtype):
    """HF-style additive mask [batch, 1, q_len, past_len + q_len].

    attention_mask: [batch, past_len + q_len] of 1 (keep) / 0 (pad), or None.
    Query i (absolute position past_len + i) may attend key j iff j <= past_len + i and
    attention_mask[:, j] == 1.  Masked entries hold torch.finfo(dtype).min.
    """
    min_val = torch.finfo(dtype).min
    device = attention_mask.device if attention_mask is not None else None
    total = past_len + q_len
    # causal part, written like HF _make_causal_mask (with past_key_values_length)
    mask = torch.full((q_len, q_len), min_val, dtype=dtype, device=device)
    mask_cond = torch.arange(q_len, device=device)
    mask = mask.masked_fill(mask_cond < (mask_cond + 1).view(q_len, 1), 0.0)
    zeros = torch.zeros(q_len, past_len, dtype=dtype, device=device)
    mask = torch.cat([zeros, mask], dim=-1)[None, None, :, :]  # [1,1,q,total]
    if attention_mask is None:
        return mask
    bsz = attention_mask.shape[0]
    mask = mask.expand(bsz, 1, q_len, total)
    # HF _expand_mask: inverted = 1 - mask; masked_fill(inverted.bool(), min)
    expanded = attention_mask[:, None, None, :].expand(bsz, 1, q_len, total).to(dtype)
    inverted = 1.0 - expanded
    return mask.masked_fill(inverted.to(torch.bool), min_val)


# --------------------------------------------------------------------------- LLaMA

@dataclass
class LlamaConfig:
    vocab_size: int = VOCAB
    hidden_size: int = 256
    intermediate_size: int = 704
    num_hidden_layers: int = 8
    num_attention_heads: int = 8
    num_key_value_heads: int = 2
    head_dim: int = 32
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_position_embeddings: int = 2048

    def to_dict(self):
        return dict(asdict(self), model_type="llama")


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, dim, base=10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x, position_ids):
        # x: [bs, heads, seq, head_dim]; position_ids: [bs, seq]
        inv_freq_expanded = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        position_ids_expanded = position_ids[:, None, :].float()
        freqs = torch.matmul(inv_freq_expanded, position_ids_expanded).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    cos = cos.unsqueeze(1)
    sin = sin.unsqueeze(1)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


def repeat_kv(hidden_states, n_rep):
    if n_rep == 1:
        return hidden_states
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


class LlamaMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.num_key_value_heads = cfg.num_key_value_heads
        self.head_dim = cfg.head_dim
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        h = cfg.hidden_size
        self.q_proj = nn.Linear(h, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(h, self.num_key_value_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(h, self.num_key_value_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, h, bias=False)

    def forward(self, hidden_states, cos, sin, attn_mask, past_kv=None):
        bsz, q_len, _ = hidden_states.shape
        q = self.q_proj(hidden_states).view(bsz, q_len, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(hidden_states).view(bsz, q_len, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(hidden_states).view(bsz, q_len, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)
            v = torch.cat([past_kv[1], v], dim=2)
        present = (k, v)
        k = repeat_kv(k, self.num_key_value_groups)
        v = repeat_kv(v, self.num_key_value_groups)
        attn = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        attn = attn + attn_mask
        attn = F.softmax(attn, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(attn, v)
        out = out.transpose(1, 2).contiguous().reshape(bsz, q_len, self.num_heads * self.head_dim)
        return self.o_proj(out), present


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = LlamaAttention(cfg)
        self.mlp = LlamaMLP(cfg)
        self.input_layernorm = LlamaRMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)

    def forward(self, x, cos, sin, attn_mask, past_kv=None):
        residual = x
        h, present = self.self_attn(self.input_layernorm(x), cos, sin, attn_mask, past_kv)
        x = residual + h
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, present


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = LlamaRMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(cfg.head_dim, base=cfg.rope_theta)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        std = 0.02
        if isinstance(m, nn.Linear):
            m.weight.data.normal_(0.0, std)
        elif isinstance(m, nn.Embedding):
            m.weight.data.normal_(0.0, std)

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None):
        bsz, q_len = input_ids.shape
        past_len = past_key_values[0][0].shape[2] if past_key_values is not None else 0
        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + q_len, device=input_ids.device)[None].expand(bsz, q_len)
        x = self.embed_tokens(input_ids)
        attn_mask = make_4d_mask(attention_mask, q_len, past_len, x.dtype)
        cos, sin = self.rotary_emb(x, position_ids)
        presents = []
        for i, layer in enumerate(self.layers):
            x, present = layer(x, cos, sin, attn_mask, past_key_values[i] if past_key_values is not None else None)
            presents.append(present)
        x = self.norm(x)
        return self.lm_head(x), presents


# --------------------------------------------------------------------------- GPT-2

@dataclass
class GPT2Config:
    vocab_size: int = VOCAB
    n_positions: int = 1024
    n_embd: int = 256
    n_layer: int = 4
    n_head: int = 8
    layer_norm_epsilon: float = 1e-5

    def to_dict(self):
        return dict(asdict(self), model_type="gpt2")


class Conv1D(nn.Module):
    """HF transformers Conv1D: a Linear with weight stored as [in, out]."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf).normal_(0.0, 0.02))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return x.view(size_out)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_dim = cfg.n_embd
        self.num_heads = cfg.n_head
        self.head_dim = cfg.n_embd // cfg.n_head
        self.c_attn = Conv1D(3 * self.embed_dim, self.embed_dim)
        self.c_proj = Conv1D(self.embed_dim, self.embed_dim)

    def _split_heads(self, t):
        new_shape = t.size()[:-1] + (self.num_heads, self.head_dim)
        return t.view(new_shape).permute(0, 2, 1, 3)

    def forward(self, x, attn_mask, past_kv=None):
        query, key, value = self.c_attn(x).split(self.embed_dim, dim=2)
        query, key, value = self._split_heads(query), self._split_heads(key), self._split_heads(value)
        if past_kv is not None:
            key = torch.cat((past_kv[0], key), dim=-2)
            value = torch.cat((past_kv[1], value), dim=-2)
        present = (key, value)
        w = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(self.head_dim)
        w = w + attn_mask
        w = F.softmax(w, dim=-1)
        out = torch.matmul(w, value)
        out = out.permute(0, 2, 1, 3).contiguous()
        out = out.view(out.size()[:-2] + (self.num_heads * self.head_dim,))
        return self.c_proj(out), present


class GPT2MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_fc = Conv1D(4 * cfg.n_embd, cfg.n_embd)
        self.c_proj = Conv1D(cfg.n_embd, 4 * cfg.n_embd)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = GPT2Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = GPT2MLP(cfg)

    def forward(self, x, attn_mask, past_kv=None):
        h, present = self.attn(self.ln_1(x), attn_mask, past_kv)
        x = x + h
        x = x + self.mlp(self.ln_2(x))
        return x, present


class GPT2LMHeadModel(nn.Module):
    def __init__(self, cfg: GPT2Config):
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)
        self.h = nn.ModuleList([GPT2Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.wte.weight.data.normal_(0.0, 0.02)
        self.wpe.weight.data.normal_(0.0, 0.01)
        # GPT-2 scaled init of residual projections
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                p.data.normal_(0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None):
        bsz, q_len = input_ids.shape
        past_len = past_key_values[0][0].shape[2] if past_key_values is not None else 0
        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + q_len, device=input_ids.device)[None].expand(bsz, q_len)
        x = self.wte(input_ids) + self.wpe(position_ids)
        attn_mask = make_4d_mask(attention_mask, q_len, past_len, x.dtype)
        presents = []
        for i, block in enumerate(self.h):
            x, present = block(x, attn_mask, past_key_values[i] if past_key_values is not None else None)
            presents.append(present)
        x = self.ln_f(x)
        logits = F.linear(x, self.wte.weight)  # tied lm_head
        return logits, presents


# --------------------------------------------------------------------------- registry

MODELS = {
    # shipped default target
    "coder": ("llama", LlamaConfig(hidden_size=256, intermediate_size=512, num_hidden_layers=8,
                                   num_attention_heads=8, num_key_value_heads=2, head_dim=32,
                                   rope_theta=10000.0)),
    "coder-draft": ("llama", LlamaConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                                         num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                                         rope_theta=10000.0)),
    "gpt2-coder": ("gpt2", GPT2Config(n_embd=192, n_layer=4, n_head=6, n_positions=512)),
    # untrained, for compile-time benchmarks: 7B-like depth at tiny width
    "llama-32l-tiny": ("llama", LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=32,
                                            num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                            rope_theta=10000.0)),
}


def build(name):
    kind, cfg = MODELS[name]
    return (LlamaForCausalLM(cfg) if kind == "llama" else GPT2LMHeadModel(cfg)), kind, cfg


def num_kv_heads(kind, cfg):
    return cfg.num_key_value_heads if kind == "llama" else cfg.n_head


def head_dim(kind, cfg):
    return cfg.head_dim if kind == "llama" else cfg.n_embd // cfg.n_head


def num_layers(kind, cfg):
    return cfg.num_hidden_layers if kind == "llama" else cfg.n_layer
