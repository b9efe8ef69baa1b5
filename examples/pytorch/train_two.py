"""Two ReLU MLPs (784-128-64-10) trained in PyTorch on MNIST, with and
without an L1 penalty, saved as safetensors that `cargo xtask compare`
reads (nn.Sequential names: 0.weight, 2.weight, ...).

    /usr/bin/python3 examples/pytorch/train_two.py OUT_DIR [STEPS]

Needs torch only (Debian: python3-torch); the MNIST files come from
fixtures/mnist. The safetensors file is written by hand (8-byte header
length, JSON header, little-endian f32 data), so the `safetensors`
package is not needed.
"""
import gzip
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.join(HERE, "..", "..", "fixtures", "mnist")


def idx(name):
    with gzip.open(os.path.join(MNIST, name), "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return torch.frombuffer(bytearray(data[4 + 4 * dims :]), dtype=torch.uint8).reshape(shape)


def save_safetensors(model, path):
    tensors = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        b = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def train(l1, steps, seed):
    torch.manual_seed(seed)
    x = idx("train-images-idx3-ubyte.gz").reshape(-1, 784).float() / 255.0
    y = idx("train-labels-idx1-ubyte.gz").long()
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        i = torch.randint(0, x.shape[0], (128,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
        if l1 > 0:
            loss = loss + l1 * sum(p.abs().sum() for n, p in model.named_parameters() if n.endswith("weight"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt = idx("t10k-images-idx3-ubyte.gz").reshape(-1, 784).float() / 255.0
    yt = idx("t10k-labels-idx1-ubyte.gz").long()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    return model, acc


if __name__ == "__main__":
    out = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    for name, l1 in [("plain", 0.0), ("l1", 1e-4)]:
        model, acc = train(l1, steps, seed=0)
        path = os.path.join(out, name + ".safetensors")
        save_safetensors(model, path)
        print(f"{name}: test accuracy {acc:.4f} -> {path}")
