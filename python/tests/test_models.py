"""Models: files, state dicts of arrays, the forward pass, and their errors."""

import numpy as np
import pytest

import modcirc


def _mlp(sizes, rng):
    return [(rng.standard_normal((o, i)).astype(np.float32) * 0.3, rng.standard_normal(o).astype(np.float32) * 0.1)
            for i, o in zip(sizes, sizes[1:])]


def _numpy_forward(layers, x, act):
    for j, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if j + 1 < len(layers):
            x = act(x)
    return x


@pytest.mark.parametrize("sizes", [[6, 5, 3], [10, 8, 7, 4, 2]])
@pytest.mark.parametrize("naming", ["fc", "sequential", "prefixed"])
def test_state_dict_of_arrays_runs_as_numpy_does(sizes, naming):
    rng = np.random.default_rng(len(sizes))
    layers = _mlp(sizes, rng)
    sd = {}
    for j, (w, b) in enumerate(layers):
        stem = {"fc": f"fc{j + 1}", "sequential": f"{2 * j}", "prefixed": f"net.{2 * j}"}[naming]
        sd[f"{stem}.weight"], sd[f"{stem}.bias"] = w, b
    model = modcirc.from_state_dict(sd, "relu")
    assert model.sizes == sizes and model.activation == "relu"
    x = rng.random((9, sizes[0]), dtype=np.float32)
    want = _numpy_forward(layers, x, lambda z: np.maximum(z, 0))
    np.testing.assert_allclose(model.forward(x), want, rtol=1e-5, atol=1e-5)
    for (w, b), (w2, b2) in zip(layers, model.weights()):
        np.testing.assert_array_equal(w, w2)
        np.testing.assert_array_equal(b, b2)


def test_float64_and_float16_are_read_as_float32():
    rng = np.random.default_rng(0)
    layers = _mlp([4, 3, 2], rng)
    for dtype in (np.float64, np.float16):
        sd = {f"fc{j + 1}.{p}": a.astype(dtype) for j, (w, b) in enumerate(layers) for p, a in (("weight", w), ("bias", b))}
        model = modcirc.from_state_dict(sd, "tanh")
        np.testing.assert_array_equal(model.weights()[0][0], layers[0][0].astype(dtype).astype(np.float32))


def test_save_and_load_keep_the_weights_and_activation(tmp_path):
    rng = np.random.default_rng(1)
    layers = _mlp([5, 4, 3], rng)
    sd = {f"fc{j + 1}.{p}": a for j, (w, b) in enumerate(layers) for p, a in (("weight", w), ("bias", b))}
    model = modcirc.from_state_dict(sd, "gelu")
    path = tmp_path / "m.safetensors"
    model.save(path)
    back = modcirc.load(path)
    assert back.activation == "gelu" and back.sizes == [5, 4, 3]
    x = rng.random((4, 5), dtype=np.float32)
    np.testing.assert_array_equal(back.forward(x), model.forward(x))
    assert set(back.state_dict()) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def test_errors_are_python_exceptions_with_the_library_messages(tmp_path):
    with pytest.raises(FileNotFoundError, match="nonesuch"):
        modcirc.load(tmp_path / "nonesuch.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="junk.safetensors"):
        modcirc.load(tmp_path / "junk.safetensors", "relu")
    sd = {"fc1.weight": np.ones((2, 3), np.float32), "fc1.bias": np.ones(2, np.float32),
          "fc2.weight": np.ones((2, 2), np.float32), "fc2.bias": np.ones(2, np.float32)}
    with pytest.raises(ValueError, match="activation"):
        modcirc.from_state_dict(sd)
    with pytest.raises(ValueError, match="activation"):
        modcirc.from_state_dict(sd, "swish")
    with pytest.raises(ValueError, match="int64"):
        modcirc.from_state_dict({**sd, "fc1.weight": np.ones((2, 3), np.int64)}, "relu")
    model = modcirc.from_state_dict(sd, "relu")
    with pytest.raises(ValueError, match="takes 3"):
        model.forward(np.ones((1, 4), np.float32))


def test_save_refuses_its_own_file_links_and_fifos(tmp_path):
    import os
    rng = np.random.default_rng(2)
    sd = {f"fc{j + 1}.{p}": a for j, (w, b) in enumerate(_mlp([3, 2, 2], rng)) for p, a in (("weight", w), ("bias", b))}
    path = tmp_path / "m.safetensors"
    modcirc.from_state_dict(sd, "relu").save(path)
    model = modcirc.load(path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="read from"):
        model.save(path)
    link = tmp_path / "link.safetensors"
    link.symlink_to(tmp_path / "elsewhere.safetensors")
    with pytest.raises(ValueError):
        model.save(link)
    fifo = tmp_path / "fifo.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(ValueError):
        model.save(fifo)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.safetensors", "link.safetensors", "m.safetensors"]
