"""Optimizer-state bytes of a LLaMA-7B-shaped model (abstract, nothing allocated) for Adam and the GaLore family.

GaLore (Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection",
arXiv:2403.03507) reports "reduces memory usage by up to 65.5% in optimizer states" and "8-bit GaLore
further reduces optimizer memory by up to 82.5% ... compared to a BF16 baseline" for LLaMA 7B at rank
1024. This experiment builds the parameter tree of :class:`jaxopt_lab.models.Llama` at LLaMA-7B size with
``jax.eval_shape`` and each optimizer's state with ``jax.eval_shape(tx.init, params)``, measures it with
``optim.state_bytes`` and checks it against the closed forms of ``optim.formula_bytes``.

Accounting (the official code's, jiaweizzhao/GaLore ``torchrun_main.py``: ``target_modules_list =
["attn", "mlp"]``): the attention and MLP weight matrices are projected; embedding, output head and
norms keep plain (8-bit) Adam. Ratios are taken at one storage width for both sides (Adam and GaLore
store float32 states here; the ratio is the one of BF16 states); 8-bit methods are compared with Adam
at the BF16 baseline (``adam_bf16``: Adam on bfloat16 parameters keeps bfloat16 moments).

The summary has ``state_bytes_<label>``, ``formula_match_<label>`` (1.0: measured == closed form),
``reduction_<label>`` = 1 - bytes / Adam's bytes at the same width (8-bit: / BF16 Adam's), and
``paper_accounting_*``: closed-form reductions of variants of the accounting (which matrices are
projected, the projector's width), to locate the published percentages.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lab import models, optim
from jaxopt_lab.lab import Range, Rule, plots

CONFIG_SPEC = {
    "model.vocab_size": Range(1, integer=True),
    "model.dim": Range(2, integer=True),
    "model.n_layers": Range(1, integer=True),
    "model.n_heads": Range(1, integer=True),
    "model.hidden_dim": Range(1, integer=True),
    "model.max_seq_len": Range(1, integer=True),
    "rank": Range(1, integer=True),
}

CONFIG_DEFAULTS = {
    "seed": (0, "unused: shapes only, nothing is initialised"),
    "model.vocab_size": (32000, "vocabulary size (LLaMA-7B's)"),
    "model.dim": (4096, "model width (LLaMA-7B's)"),
    "model.n_layers": (32, "decoder layers (LLaMA-7B's)"),
    "model.n_heads": (32, "attention heads (LLaMA-7B's)"),
    "model.hidden_dim": (11008, "MLP hidden width (LLaMA-7B's)"),
    "model.max_seq_len": (2048, "context length (LLaMA-7B's); no parameter depends on it"),
    "rank": (1024, "GaLore rank of every projected matrix, < min(model.dim, model.hidden_dim)"),
}

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules); with CONFIG_SPEC
# they are all LlamaConfig asks of the model group
CONFIG_RULES = (
    # dim % n_heads == 0 with an even dim // n_heads (rotary pairs), i.e. dim % (2 n_heads) == 0
    Rule("model.n_heads", "model.dim % (2 * model.n_heads) == 0",
         "a divisor of model.dim = {model.dim} into heads of even size (rotary pairs)"),
    Rule("rank", "rank < min(model.dim, model.hidden_dim)",
         "< min(model.dim, model.hidden_dim) = {min(model.dim, model.hidden_dim)} so that every matrix is "
         "projected"),
)

# label -> (registry name, extra arguments, formula method or None, bytes compared with BF16 Adam)
METHODS = {
    "galore": ("galore", {}, "galore", False),
    "fira": ("fira", {}, "fira", False),
    # GaLoreAdamW8bit: int8 moments, unquantized projector, fixed refresh gap, weights untouched
    "galore_8bit": ("q_galore", {"projector_bits": None, "cos_threshold": None, "weight_bits": None},
                    None, True),
    # Q-GaLore as its official code: int4 projector, adaptive gap, int8 weights with a rounding key
    "q_galore": ("q_galore", {}, "q_galore", True),
    "adam_8bit": ("adam_8bit", {}, "adam_8bit", True),
    "smmf": ("smmf", {}, "smmf", True),
}
PROJECTED_MODULES = ("attention", "mlp")  # the official code's target_modules_list ["attn", "mlp"]


def llama_shapes(model_cfg: dict, dtype=jnp.float32):
    """The parameter tree of ``Llama(LlamaConfig(**model_cfg))`` as ShapeDtypeStructs (nothing allocated)."""
    config = models.LlamaConfig(**model_cfg)
    _, init_fn = models.functional_init(lambda rngs: models.Llama(config, rngs=rngs))
    shapes = jax.eval_shape(init_fn, 0)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, dtype), shapes)


def projected_mask(params):
    """True on the 2-D weights of the attention and MLP modules (what the official code projects)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: x.ndim == 2 and any(m in jax.tree_util.keystr(path) for m in PROJECTED_MODULES),
        params)


def _split(params, mask):
    leaves, flags = jax.tree.leaves(params), jax.tree.leaves(mask)
    return ([x for x, f in zip(leaves, flags) if f], [x for x, f in zip(leaves, flags) if not f])


def closed_form(method: str, params, mask, rank: int, **kw) -> int:
    """``optim.formula_bytes`` of ``method`` on the projected matrices plus its unprojected rule (Adam,
    or 8-bit Adam for the 8-bit methods) on the rest; the shared Adam count is counted once."""
    projected, rest = _split(params, mask)
    if method in ("adam", "adam_8bit", "smmf"):
        return optim.formula_bytes(method, jax.tree.leaves(params), rank=rank, **kw)
    plain = "adam_8bit" if method == "q_galore" else "adam"
    return (optim.formula_bytes(method, projected, rank=rank, **kw)
            + optim.formula_bytes(plain, rest, rank=rank, **kw) - optim.formula_bytes(plain, []))


def _entries(params, mask, rank, *, project_all=False):
    """(moment entries, projector entries, unprojected entries) of GaLore in the 'std' layout:
    moments r x M and projector N x r for an m x n matrix (M = max, N = min)."""
    moments = projector = plain = 0
    for x, f in zip(jax.tree.leaves(params), jax.tree.leaves(mask)):
        if (f or (project_all and x.ndim == 2)) and min(x.shape) > rank:
            moments += 2 * rank * max(x.shape)
            projector += rank * min(x.shape)
        else:
            plain += 2 * int(np.prod(x.shape))
    return moments, projector, plain


def paper_accounting(params, mask, rank) -> dict:
    """Closed-form reductions (no block scales, no counters) of accounting variants vs BF16 Adam."""
    adam = 2 * 2 * sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))  # BF16 m and v
    m, p, plain = _entries(params, mask, rank)
    ma, pa, plain_a = _entries(params, mask, rank, project_all=True)
    return {
        "paper_accounting_galore_bf16": 1 - 2 * (m + p + plain) / adam,
        "paper_accounting_galore_bf16_embeddings_projected": 1 - 2 * (ma + pa + plain_a) / adam,
        "paper_accounting_galore_bf16_projector_not_counted": 1 - 2 * (m + plain) / adam,
        "paper_accounting_galore_8bit_bf16_projector": 1 - (m + 2 * p + plain) / adam,
        "paper_accounting_galore_8bit_all_states_8bit": 1 - (m + p + plain) / adam,
    }


def run(cfg, ctx):
    model_cfg = cfg.model.to_dict()
    params = llama_shapes(model_cfg)
    mask = projected_mask(params)
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    if n_params != models.LlamaConfig(**model_cfg).num_params():
        raise RuntimeError(f"parameter count {n_params} != LlamaConfig.num_params()")
    ctx.progress(len(METHODS) + 2)
    adam = optim.state_bytes(jax.eval_shape(optax.adam(1e-3).init, params))
    adam_bf16 = optim.state_bytes(jax.eval_shape(
        optax.adam(1e-3).init, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, jnp.bfloat16), params)))
    summary = {"num_params": n_params, "state_bytes_adam": adam, "state_bytes_adam_bf16": adam_bf16,
               "formula_match_adam": float(adam == closed_form("adam", params, mask, cfg.rank))}
    ctx.log(1, state_gb_adam=adam / 1e9)
    gb = {"adam (fp32)": adam / 1e9, "adam (bf16)": adam_bf16 / 1e9}
    for i, (label, (name, extra, method, eight_bit)) in enumerate(METHODS.items()):
        kwargs = dict(extra)
        if name != "adam_8bit" and name != "smmf":
            kwargs.update(rank=cfg.rank, mask=mask)
        state_bytes = optim.state_bytes(jax.eval_shape(optim.get(name, **kwargs).init, params))
        summary[f"state_bytes_{label}"] = state_bytes
        summary[f"reduction_{label}"] = 1 - state_bytes / (adam_bf16 if eight_bit else adam)
        if method is not None:
            summary[f"formula_match_{label}"] = float(
                state_bytes == closed_form(method, params, mask, cfg.rank))
        gb[label] = state_bytes / 1e9
        ctx.log(i + 2, **{f"state_gb_{label}": state_bytes / 1e9})
    summary["formula_match_all"] = float(all(v == 1.0 for k, v in summary.items()
                                             if k.startswith("formula_match_")))
    summary.update(paper_accounting(params, mask, cfg.rank))
    ctx.summary(**summary)
    fig = plots.bars(gb, ylabel="optimizer-state GB (1e9 bytes)",
                     title=f"LLaMA {n_params / 1e9:.2f}B shapes, rank {cfg.rank}")
    ax = fig.axes[0]
    for reduction, base, style in ((0.655, adam, "--"), (0.825, adam_bf16, ":")):
        ax.axhline((1 - reduction) * base / 1e9, color="k", ls=style, lw=1,
                   label=f"paper: {reduction:.1%} below {'fp32' if base == adam else 'bf16'} Adam")
    ax.legend(fontsize=7)
    ctx.figure("state_memory", fig)
