"""Discovery from Python against the same call from Rust, in one run.

    python python/bench/bench_discover.py MODEL [TASK] [DATA_DIR] [RUNS] [RUST_EXAMPLE]

RUST_EXAMPLE is the `time_discover` example binary
(`cargo build --release -p modcirc-study --example time_discover`;
default target/release/examples/time_discover). The two alternate, RUNS
times each, with the study's settings (K = 15, 50 resamples of 500 pairs);
the Python time is the whole `modcirc.discover` call, from arguments to the
`Discovery` with its numpy arrays. Run it with nothing else on the machine.
"""

import statistics
import subprocess
import sys
import time

import modcirc

model_path = sys.argv[1]
task = sys.argv[2] if len(sys.argv) > 2 else "circle"
data_dir = sys.argv[3] if len(sys.argv) > 3 else "fixtures/mnist"
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 5
rust = sys.argv[5] if len(sys.argv) > 5 else "target/release/examples/time_discover"

model = modcirc.load(model_path)
data = modcirc.mnist(data_dir)
modcirc.discover(model, data, task)  # warm: first-touch of the pages, rayon's pool

py_s, rust_s = [], []
for _ in range(runs):
    out = subprocess.run([rust, model_path, task, data_dir, "1"], check=True, capture_output=True, text=True)
    rust_s.append(float(out.stdout.split()[-1]))
    t = time.perf_counter()
    modcirc.discover(model, data, task)
    py_s.append(time.perf_counter() - t)

r, p = statistics.median(rust_s), statistics.median(py_s)
print(f"model {model_path}, task {task}, {runs} runs each, alternating")
print(f"rust   median {r:.3f} s  (min {min(rust_s):.3f})")
print(f"python median {p:.3f} s  (min {min(py_s):.3f})")
print(f"python / rust: {p / r:.3f}")
