"""Cross-key config rules, checked before the experiment (and so jax) is imported.

``CONFIG_SPEC`` says what values one key allows; a rule relates keys. An experiment lists its rules in
``CONFIG_RULES``, a tuple of :class:`Rule` read by ``ast`` like its ``CONFIG_SPEC``::

    CONFIG_RULES = (
        Rule("train.checkpoint_every", "train.checkpoint_every % train.log_every == 0",
             "a multiple of train.log_every = {train.log_every} (0: no checkpoints)"),
        Rule("train.batch_size", "train.batch_size <= digits_train_size(data.test_fraction)",
             "<= the training set size {digits_train_size(data.test_fraction)}"),
    )

``condition`` is a Python expression over the config's top-level keys (``train.log_every`` reads the
``train`` group; groups are ``ConfigDict``s, so ``"adam" in optimizers`` and ``optimizers.values()``
work), the builtins in :data:`BUILTINS` and the functions in :data:`FUNCTIONS`, which answer without
importing jax. ``allowed`` is an f-string over the same names. A rule that does not hold is
``ConfigError("config key KEY = VALUE: must be ALLOWED")``; a condition that raises (e.g. a model
config refusing its sizes) is that error with the exception's message. Rules run after ``CONFIG_SPEC``
(so a rule may assume each key's own range), in order, in :func:`jaxopt_lab.lab.config.load_config`
and again in the runtime's check (configs built in Python, sweep points). A table may start from
another experiment's rules: ``(*load_experiment("train_classifier").CONFIG_RULES, Rule(...))``.

What stays in an experiment's ``check_config(cfg)``: checks that need what only the import has -- an
optimizer built from its hyperparameters, the device mesh, a name an imported file registers.
"""

from __future__ import annotations

import builtins
import dataclasses
import math
from typing import Any, Callable, Iterable, Mapping

import ml_collections

from .config import ConfigError

__all__ = ["Rule", "check_rules", "BUILTINS", "FUNCTIONS", "digits_train_size", "llama_config", "optimizer_names",
           "projector_kinds", "installed"]


@dataclasses.dataclass(frozen=True)
class Rule:
    """``condition`` must hold; else ``config key KEY = VALUE: must be ALLOWED``.

    Attributes:
      key: the dotted key the error names (the one to change).
      condition: a Python expression over the config's top-level keys and :data:`FUNCTIONS`.
      allowed: what is allowed, an f-string over the same names, e.g. ``"<= problem.n = {problem.n}"``.
    """

    key: str
    condition: str
    allowed: str

    def __post_init__(self):
        for field in ("key", "condition", "allowed"):
            if not isinstance(getattr(self, field), str) or not getattr(self, field).strip():
                raise ConfigError(f"Rule {field} must be a non-empty str, got {getattr(self, field)!r}")
        for field in ("condition", "allowed"):
            source = self.condition if field == "condition" else _fstring(self.allowed)
            try:
                compile(source, f"<Rule {self.key}>", "eval")
            except SyntaxError as e:
                raise ConfigError(f"Rule for {self.key!r}: {field} {getattr(self, field)!r} is not a Python "
                                  f"expression ({e.msg})") from None


# ------------------------------------------------------------------------------------------------
# What a rule may call. Each answers from the config alone, without importing jax.

DIGITS_SAMPLES = 1797  # scikit-learn's bundled 8x8 digits (sklearn.datasets.load_digits; a test checks it)


def digits_train_size(test_fraction: float = 0.25) -> int:
    """Training-set size of :func:`jaxopt_lab.data.digits`: scikit-learn's rounding of the test share,
    ``n_test = ceil(test_fraction * 1797)`` (a test checks it against the data set)."""
    return DIGITS_SAMPLES - int(math.ceil(test_fraction * DIGITS_SAMPLES))


def llama_config(preset: str, seq_len: int, model: Any):
    """The LLaMA config an LM experiment builds: preset ``preset`` with ``max_seq_len = seq_len`` and
    the non-zero fields of the ``model`` group; ``ValueError`` naming the field if its sizes do not fit."""
    from ..llama_config import LlamaConfig

    overrides = {k: v for k, v in (model.to_dict() if hasattr(model, "to_dict") else dict(model)).items() if v}
    if preset not in LlamaConfig.PRESETS:
        raise ValueError(f"lm_preset {preset!r} is not one of {sorted(LlamaConfig.PRESETS)}")
    return getattr(LlamaConfig, preset)(max_seq_len=seq_len, **overrides)


def optimizer_names() -> list[str]:
    """Every registered optimizer's name, read from the sources (as ``jaxopt-lab list`` does)."""
    from .catalog import optimizers

    return [e.name for e in optimizers()]


def projector_kinds() -> tuple:
    """``jaxopt_lab.optim.PROJECTORS`` (the low-rank projector kinds), read from its source's literal."""
    import ast
    import pathlib

    from .catalog import _constants

    source = pathlib.Path(__file__).resolve().parents[1] / "optim" / "projectors.py"
    kinds = _constants(ast.parse(source.read_text())).get("PROJECTORS")
    if kinds is None:
        raise LookupError(f"no PROJECTORS = (...) literal in {source}")
    return tuple(kinds)


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (found, not imported: e.g. ``installed("ot")`` for POT)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


FUNCTIONS: dict[str, Callable] = {"digits_train_size": digits_train_size, "llama_config": llama_config,
                                  "optimizer_names": optimizer_names, "projector_kinds": projector_kinds,
                                  "installed": installed}

BUILTINS = {name: getattr(builtins, name) for name in (
    "abs", "all", "any", "bool", "dict", "enumerate", "float", "int", "isinstance", "len", "list", "max",
    "min", "range", "round", "set", "sorted", "str", "sum", "tuple", "zip")}


def _fstring(text: str) -> str:
    return "f" + repr(text)


def _namespace(cfg: ml_collections.ConfigDict) -> dict:
    return {**FUNCTIONS, "math": math, **{key: cfg[key] for key in cfg.keys()}}


def _value(cfg: ml_collections.ConfigDict, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            return "<missing>"
        node = node[part]
    return node.to_dict() if isinstance(node, ml_collections.ConfigDict) else node


def check_rules(cfg: ml_collections.ConfigDict, rules: Iterable[Rule]) -> None:
    """Check ``rules`` in order; :class:`ConfigError` at the first that does not hold."""
    namespace = None
    for rule in rules:
        if not isinstance(rule, Rule):
            raise ConfigError(f"CONFIG_RULES of experiment {cfg.get('experiment')!r} must hold Rule(...) "
                              f"entries, got {rule!r}")
        namespace = namespace or _namespace(cfg)
        where = f"config key {rule.key!r} = {_value(cfg, rule.key)!r}"
        try:
            holds = _evaluate(rule.condition, namespace, rule)
        except Exception as e:  # noqa: BLE001 -- e.g. a model config refusing its sizes: one line
            raise ConfigError(f"{where}: {e}") from None
        if not holds:
            try:
                allowed = _evaluate(_fstring(rule.allowed), namespace, rule)
            except Exception:  # noqa: BLE001 -- the message's own values could not be computed
                allowed = rule.allowed
            raise ConfigError(f"{where}: must be {allowed}")


def _evaluate(source: str, namespace: Mapping[str, Any], rule: Rule) -> Any:
    code = compile(source, f"<Rule {rule.key}>", "eval")
    # one globals dict, no locals: a generator expression in the condition sees the config's names too
    return eval(code, {"__builtins__": BUILTINS, **namespace})  # noqa: S307 -- the experiment's own text
