"""PyTorch modules and state dicts (torch is optional: these are skipped,
and say so, where it is not installed)."""

import numpy as np
import pytest

import modcirc

torch = pytest.importorskip("torch")
nn = torch.nn


def _sequential(act, widths=(64, 48, 32)):
    torch.manual_seed(0)
    layers, n_in = [nn.Flatten()], 784
    for w in widths:
        layers += [nn.Linear(n_in, w), act()]
        n_in = w
    layers.append(nn.Linear(n_in, 10))
    return nn.Sequential(*layers)


@pytest.mark.parametrize("act,name", [(nn.ReLU, "relu"), (nn.GELU, "gelu")])
def test_from_module_equals_saving_it_and_running_the_cli(act, name, cli_discover, data, tmp_path, without_times):
    net = _sequential(act).eval()
    model = modcirc.from_module(net)
    assert model.sizes == [784, 64, 48, 32, 10] and model.activation == name
    images, _ = data.split("test")
    with torch.no_grad():
        want = net(torch.from_numpy(images[:64].copy())).numpy()
    np.testing.assert_allclose(model.forward(images[:64]), want, rtol=1e-4, atol=1e-5)
    # What a user does without modcirc: the state dict saved as safetensors
    # (as safetensors.torch.save_file writes it), then the CLI.
    path = tmp_path / "net.safetensors"
    path.write_bytes(modcirc.models._safetensors_bytes({k: v.numpy() for k, v in net.state_dict().items()}))
    flags = ["--task", "circle", "--bootstraps", "3", "--sample", "100", "--activation", name]
    cli_out = cli_discover(path, *flags)
    d = modcirc.discover(net, data, "circle", bootstraps=3, sample=100)
    assert without_times(d.raw["report"]) == without_times(cli_out["report"])
    assert d.raw["inputs"]["model_sha256"] == cli_out["inputs"]["model_sha256"]


class Named(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(784, 20), nn.Linear(20, 10)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x.flatten(1))))


def test_a_module_of_named_layers_with_a_functional_activation():
    net = Named()
    with pytest.raises(ValueError, match="activation="):
        modcirc.from_module(net)
    model = modcirc.from_module(net, activation="tanh")
    x = torch.rand(5, 784)
    with torch.no_grad():
        np.testing.assert_allclose(model.forward(x), net(x).numpy(), rtol=1e-4, atol=1e-5)


def test_mixed_or_unknown_modules_are_refused():
    with pytest.raises(ValueError, match="more than one activation"):
        modcirc.from_module(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2)))
    with pytest.raises(ValueError, match="BatchNorm1d"):
        modcirc.from_module(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2)))
    net = nn.Sequential(nn.Linear(4, 3), nn.GELU(approximate="tanh"), nn.Linear(3, 2))
    assert modcirc.from_module(net).activation == "gelu-tanh"


def test_bfloat16_state_dicts_widen_exactly():
    net = nn.Sequential(nn.Linear(6, 4), nn.SiLU(), nn.Linear(4, 3)).to(torch.bfloat16)
    model = modcirc.from_state_dict(net.state_dict(), "silu")
    np.testing.assert_array_equal(model.weights()[0][0], net[0].weight.float().detach().numpy())


def test_modules_that_compute_another_function_are_refused():
    torch.manual_seed(1)
    with pytest.raises(ValueError, match="module: its layers run as activation -> linear"):
        modcirc.from_module(nn.Sequential(nn.ReLU(), nn.Linear(784, 20), nn.Linear(20, 10)))
    with pytest.raises(ValueError, match="ending with a Linear"):
        modcirc.from_module(nn.Sequential(nn.Linear(784, 20), nn.ReLU(), nn.Linear(20, 10), nn.ReLU()))
    with pytest.raises(ValueError, match="linear -> linear"):
        modcirc.from_module(nn.Sequential(nn.Linear(784, 20), nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 10)))

    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3 = nn.Linear(784, 20), nn.Linear(20, 20), nn.Linear(20, 10)
            self.act = nn.ReLU()

        def forward(self, x):
            h = self.act(self.fc1(x))
            return self.fc3(self.act(self.fc2(h)) + h)

    with pytest.raises(ValueError, match="differs from the layers read"):
        modcirc.from_module(Skip())
    for not_a_module in (42, "net", None):
        with pytest.raises(ValueError, match="expected a torch.nn.Module"):
            modcirc.from_module(not_a_module)
    # Dropout is inactive in the check, and the module's mode is kept.
    net = nn.Sequential(nn.Linear(784, 20), nn.ReLU(), nn.Dropout(0.5), nn.Linear(20, 10)).train()
    assert modcirc.from_module(net).sizes == [784, 20, 10] and net.training
