"""The MIL executor's load cache: a second load is served from it, a changed package is not."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ct = pytest.importorskip("coremltools")

from anechat.engines.coreml.engine import CoreMLEngine  # noqa: E402
from anechat.engines.coreml.mil import MILModel  # noqa: E402
from anechat.engines.coreml.mil.plan_cache import CACHE_DIR  # noqa: E402

pytestmark = pytest.mark.coreml


def greedy(session, n=8) -> list[int]:
    from anechat.engines.base import SamplingParams

    ids = session.prompt_ids([{"role": "user", "content": "Hello there"}])
    session.reset()
    events = list(session.generate_ids(ids, SamplingParams(max_tokens=n), ignore_eos=True))
    return [t for e in events[:-1] for t in e.token_ids]


def test_the_second_load_of_a_folder_is_served_from_the_cache_and_answers_the_same(tiny_coreml_lut6_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_coreml_lut6_dir, folder, ignore=shutil.ignore_patterns(CACHE_DIR))  # other tests may have loaded it
    first = CoreMLEngine().load(folder)
    assert set(first.info.extra["load_cache"].values()) == {"written"}
    want = greedy(first)
    del first
    second = CoreMLEngine().load(folder)
    assert set(second.info.extra["load_cache"].values()) == {"hit"}
    assert greedy(second) == want
    assert (folder / CACHE_DIR).is_dir()


def test_the_cache_keeps_fp16_weights_in_half_the_bytes_and_serves_them_as_fp32(tiny_coreml_dir, tmp_path):
    package = next(p for p in sorted(tiny_coreml_dir.glob("*FFN*.mlpackage")))
    shutil.copytree(package, tmp_path / package.name)
    first = MILModel(tmp_path / package.name)
    first.compile_all()
    assert first.save_cache() == "written"
    cached = sum(f.stat().st_size for f in (tmp_path / CACHE_DIR).rglob("*.npy"))
    assert cached < 0.6 * first.weight_bytes()
    second = MILModel(tmp_path / package.name)
    second.compile_all()
    assert second.cache_status == "hit"
    widened = {a.dtype for a in second.constant_arrays() if a.size >= 1024}
    assert widened == {np.dtype(np.float32)}
    assert second.weight_bytes() == first.weight_bytes()


def save_linear(path, seed: int):
    torch.manual_seed(seed)
    module = torch.nn.Linear(64, 64)
    x = torch.randn(1, 64)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module.eval(), (x,))
        mlmodel = ct.convert(
            traced, inputs=[ct.TensorType(name="x", shape=x.shape)], outputs=[ct.TensorType(name="y")],
            convert_to="mlprogram", minimum_deployment_target=ct.target.macOS15, skip_model_load=True,
            compute_precision=ct.precision.FLOAT32,
        )
    shutil.rmtree(path, ignore_errors=True)
    mlmodel.save(str(path))
    with torch.no_grad():
        return x.numpy(), module(x).numpy()


def load_and_run(path, x):
    model = MILModel(path)
    y = model.predict({"x": x})["y"]
    model.save_cache()
    return model.cache_status, y


def test_a_changed_package_misses_the_cache_and_replaces_it(tmp_path):
    path = tmp_path / "m.mlpackage"
    x, want = save_linear(path, seed=0)
    assert load_and_run(path, x)[0] == "written"
    status, got = load_and_run(path, x)
    assert status == "hit"
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    x, want = save_linear(path, seed=1)  # new weights, same path and shapes
    status, got = load_and_run(path, x)
    assert status == "written"
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert len(list((tmp_path / CACHE_DIR).iterdir())) == 1  # the stale entry is gone


def test_a_damaged_cache_is_a_miss_not_an_error(tmp_path):
    path = tmp_path / "m.mlpackage"
    x, want = save_linear(path, seed=0)
    load_and_run(path, x)
    for plan in (tmp_path / CACHE_DIR).rglob("plan.json"):
        plan.write_text("{not json")
    status, got = load_and_run(path, x)
    assert status == "written"
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_read_only_folder_loads_without_a_cache(tmp_path):
    path = tmp_path / "m.mlpackage"
    x, want = save_linear(path, seed=0)
    tmp_path.chmod(0o555)
    try:
        status, got = load_and_run(path, x)
    finally:
        tmp_path.chmod(0o755)
    if status == "written":
        pytest.skip("running as a user who can write to read-only folders")
    assert status.startswith("off:")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
