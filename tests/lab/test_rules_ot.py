"""The OT experiments' config checks (p2ot, ot_race, ot_large_scale, bench_ot_scale, bench_ot) refuse a config
before the experiment, and so jax, is imported: each check in ``CONFIG_SPEC`` or ``CONFIG_RULES``."""

from jaxopt_lab.lab import ConfigError, rules
from jaxopt_lab.lab.config import load_config
from jaxopt_lab.lab.project import project_root

CONFIGS = project_root() / "configs"


def test_ot_configs_refused_before_import(refused_before_import):
    messages = refused_before_import([
        (CONFIGS / "ot_clustering/p2ot_digits.py", ["p2ot.rho_upper=0.01"],
         "'p2ot.rho_upper' = 0.01: must be >= p2ot.rho_base = 0.1"),
        (CONFIGS / "ot_clustering/p2ot_digits.py", ["data.dim=65"],
         "'data.dim' = 65: must be <= 64, the feature dimension of data.source = 'digits'"),
        (CONFIGS / "ot/race.py", ["epsilon_sweep=(0.1, 0.0)"],
         "'epsilon_sweep' = (0.1, 0.0): must be a (possibly empty) sequence, each element a number > 0"),
        (CONFIGS / "reproduce/ot_large_scale.py", ["epsilons=(1.0,)"],
         "'epsilons' = (1.0,): must be at least two numbers > 0"),
        (CONFIGS / "reproduce/ot_large_scale.py", ["epsilons=(1.0, -0.1)"],
         "'epsilons' = (1.0, -0.1): must be a non-empty sequence, each element a number > 0"),
        (CONFIGS / "bench/ot_scale.py", ["large.threshold=0.01"],
         "'large.threshold' = 0.01: must be equal to gradient.threshold = 0.001"),
    ])
    assert all(m.startswith("config key '") for m in messages)  # each names the key to change first


def test_pot_rules_and_what_the_rules_allow(monkeypatch):
    """Without POT (``installed("ot")`` false) the mirror study and bench_ot are refused in one line; the
    race study runs without it, and the other rules allow what they should."""
    load_config(CONFIGS / "ot_clustering/p2ot_digits.py", ["data.source=mixture", "data.dim=65"])
    load_config(CONFIGS / "bench/ot_scale.py", ["large.threshold=0.01", "large.solve=True"])
    monkeypatch.setitem(rules.FUNCTIONS, "installed", lambda module: module != "ot")
    load_config(CONFIGS / "ot/race.py")
    for config, overrides, fragment in [
            ("ot/race.py", ["study=mirror"], "config key 'study' = 'mirror': must be 'race' (study 'mirror' needs POT"),
            ("bench/ot.py", [], "config key 'experiment' = 'bench_ot': must be run where POT is installed")]:
        try:
            load_config(CONFIGS / config, overrides)
        except ConfigError as e:
            assert fragment in str(e) and str(e).endswith("pip install pot)"), str(e)
        else:
            raise AssertionError(f"{config} {overrides}: accepted without POT")
