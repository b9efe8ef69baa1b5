"""Discovery from Python against the same call from Rust, in one run.

    python python/bench/bench_discover.py MODEL [TASK] [DATA_DIR] [RUNS] [RUST_EXAMPLE]

RUST_EXAMPLE is the `time_discover` example binary
(`cargo build --release -p modcirc-study --example time_discover`;
default target/release/examples/time_discover). The two alternate call by
call, RUNS calls each after a warm-up call, with the study's settings (K = 15, 50 resamples of 500 pairs);
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

# Both sides warm (a first call in a process pays page faults and rayon's
# start-up) and alternating call by call: the Rust process runs one
# discovery per line it reads, so each Python call has a Rust call beside
# it and the machine's drift cancels in the ratio of the pair.
rust_proc = subprocess.Popen([rust, model_path, task, data_dir, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)


def rust_call() -> float:
    rust_proc.stdin.write("run\n")
    rust_proc.stdin.flush()
    return float(rust_proc.stdout.readline())


rust_call()
modcirc.discover(model, data, task)
py_s, rust_s, inner_s = [], [], []
for _ in range(runs):
    rust_s.append(rust_call())
    t = time.perf_counter()
    d = modcirc.discover(model, data, task)
    py_s.append(time.perf_counter() - t)
    inner_s.append(d.seconds)
rust_proc.stdin.close()
rust_proc.wait()

r, p = statistics.median(rust_s), statistics.median(py_s)
print(f"model {model_path}, task {task}, {runs} calls each, alternating one by one")
print(f"rust   median {r:.3f} s  (min {min(rust_s):.3f})")
print(f"python median {p:.3f} s  (min {min(py_s):.3f})")
print(f"python / rust: {p / r:.3f} (ratio of medians); median of the pairs' ratios "
      f"{statistics.median(a / b for a, b in zip(py_s, rust_s)):.3f}")
# What the binding adds: the Python call's time outside the discovery's own
# (arguments, the worker thread, the JSON and the arrays), call by call.
over = statistics.median(a - b for a, b in zip(py_s, inner_s))
print(f"binding overhead per call: median {over * 1000:.1f} ms ({over / p:.2%} of the call)")
