"""From a PyTorch model to a circuit, its faithfulness and a plot.

    python python/examples/from_pytorch.py [MNIST_DIR] [OUT_PNG]

Trains a small ReLU MLP in PyTorch for a few hundred steps (MNIST read by
modcirc, so no torchvision is needed), hands the module to modcirc, and
finds the circuit of the circle task (8 vs 3, 6 vs 5) by activation
patching, with its faithfulness and the faithfulness-vs-K curve. CI runs it.
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import modcirc

data_dir = sys.argv[1] if len(sys.argv) > 1 else "fixtures/mnist"
out_png = sys.argv[2] if len(sys.argv) > 2 else "circle_faithfulness.png"

# Any MNIST-format data: modcirc reads the IDX files and checks their SHA-256.
data = modcirc.mnist(data_dir)
images, labels = data.split("train")
x, y = torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))

# Your model, trained your way.
torch.manual_seed(0)
net = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for step in range(600):
    batch = torch.randint(0, len(x), (100,))
    loss = F.cross_entropy(net(x[batch]), y[batch])
    opt.zero_grad()
    loss.backward()
    opt.step()

# Into modcirc: the module's Linear layers and its activation.
model = modcirc.from_module(net.eval())
test_x, test_y = data.split("test")
print(model, f"test accuracy {np.mean(model.predict(test_x) == test_y):.3f}")

# The circuit: the 15 neurons per hidden layer whose patching moves the
# corrupted logits most towards the clean ones, with 95% intervals over
# 50 bootstrap resamples, and the smallest circuit keeping 90% of the margin.
d = modcirc.discover(model, data, "circle", k=15, target_faithfulness=0.9)
print(d)
for h, nodes in enumerate(d.nodes, start=1):
    print(f"hidden layer {h}: neurons {nodes.tolist()}")
print(f"faithfulness on all {len(d.pairs)} pairs: {d.faithfulness():.3f} "
      f"(zero ablation: {d.faithfulness('zero'):.3f})")
s = d.summary["logit_difference"]
print(f"logit difference {s['mean']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}] over {s['n']} resamples")
sm = d.smallest
print(f"smallest K reaching faithfulness 0.9: {sm['k']} ({sm['edges']} edges); "
      f"fewest top-|EAP| edges: {sm['eap_edges']}")

# A plot (matplotlib), and the circuit for Graphviz or networkx.
import matplotlib

matplotlib.use("Agg")
ax = d.plot()
ax.figure.savefig(out_png, dpi=120, bbox_inches="tight")
print(f"wrote {out_png}")
dot = d.export("dot")
print(f"DOT export: {len(dot.splitlines())} lines")
