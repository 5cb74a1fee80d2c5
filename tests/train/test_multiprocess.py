"""Several devices and processes, each case in its own subprocess (simulated CPU devices)."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parents[1]


def _python(*args, timeout=1200, env=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)


def _result(proc, timeout=1200):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT "):]) if lines else None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mesh_matches_one_device_shards_state_and_resumes_anywhere():
    out = _result(_python(HERE / "_multidevice.py", "adam,galore,fira,smmf,sam", "checkpoint"))
    for name, losses in out["losses"].items():   # float32, 20 steps, 1 device vs (data=2, fsdp=4)
        np.testing.assert_allclose(losses["grid"], losses["one"], rtol=1e-5, err_msg=name)
    for name in ("adam", "galore", "smmf"):      # each device holds 1/4 of the state + replicated leaves
        b = out["bytes"][name]
        assert b["one"]["device"] == b["one"]["total"]
        assert b["grid"]["device"] <= b["grid"]["total"] / 4 + b["grid"]["replicated"], (name, b)
        assert b["grid"]["replicated"] < 0.01 * b["grid"]["total"], (name, b)
    reference = out["losses"]["adam"]["one"]
    np.testing.assert_allclose(out["resumed_one"], reference, rtol=1e-5)      # written on 8, read on 1
    np.testing.assert_allclose(out["resumed_grid42"], reference, rtol=1e-5)   # ... and on (4, 2)
    assert out["kill_resume_identical"]


@pytest.mark.slow
def test_two_processes_train_like_one():
    port = _free_port()
    procs = [_python(HERE / "_two_process.py", port, 2, i, 2) for i in (0, 1)]
    joint = [_result(p) for p in procs]
    alone = _result(_python(HERE / "_two_process.py", 0, 1, 0, 4))
    assert joint[1] is None                   # only process 0 reports
    np.testing.assert_allclose(joint[0], alone, rtol=1e-6)


def test_unreachable_coordinator_is_one_clear_error():
    code = ("from jaxopt_lab import train\n"
            f"train.distributed.initialize('127.0.0.1:{_free_port()}', 2, 1, timeout_s=2)\n")
    proc = _python("-c", code)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "ConfigError: --distributed: no coordinator listening" in out, out[-2000:]


@pytest.mark.slow
def test_m_sharpness_per_data_shard_matches_one_device():
    # m-SAM with 4 chunks on (data=4): each shard perturbs with its own chunk's gradient (shard_map)
    out = _result(_python(HERE / "_m_sharpness.py"))
    assert out["shard_map"]
    np.testing.assert_allclose(out["losses"]["data4"], out["losses"]["one"], rtol=1e-5)
    assert not any(shape.endswith("[8,16]") for shape in out["all_gathers"]), out["all_gathers"]
