#!/usr/bin/python3
"""minidl's benchmark suite: runs every benchmark program (bench/*.cpp, built
by CMake with MINIDL_BUILD_BENCH=ON) and bench/torch_bench.py several times,
then writes a Markdown report (bench/RESULTS.md) with medians, min–max,
ratios and the performance targets, met or not.

    /usr/bin/python3 bench/run_suite.py --build build-bench/bench --out bench/RESULTS.md

`bash scripts/run bench` builds in Release and runs this. Each program prints
one JSON line; this script only repeats, aggregates and reports. Runs are
interleaved (one of each implementation per round) so that a slow drift of the
machine touches all of them alike. Before each run the script waits (within a
budget) for the machine to be idle, and it measures how much CPU time other
processes took during the run: a run disturbed by more than 15% of a CPU is
retried (while the waiting budget lasts), and a figure that still includes
one is marked in the report.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- the workloads' arithmetic (see the report's notes) --------------------------------------

A_BATCH, A_LAYERS = 32, [(100, 1000), (1000, 1)]
B_BATCH, B_LAYERS, B_HIDDEN, B_CLASSES = 128, [(784, 512), (512, 512), (512, 10)], 512, 10
B_TRAIN, B_TEST, B_PIXELS = 60000, 10000, 784


def dense_flops(layers):
    """FLOPs per sample: forward 2·Σ in·out; backward 2·Σ in·out for the kernels' gradients plus
    2·Σ in·out for the input gradients of every layer but the first (nothing needs the data's)."""
    forward = 2 * sum(i * o for i, o in layers)
    backward = forward + 2 * sum(i * o for i, o in layers[1:])
    return forward, forward + backward


A_FORWARD, A_TRAIN = (f * A_BATCH for f in dense_flops(A_LAYERS))  # per batch of 32
B_FORWARD, B_TRAIN_PER_SAMPLE = dense_flops(B_LAYERS)  # per sample
# Workload C as products: (rows per sample, inner size, outputs) of each layer's
# product; a 3x3 'same' convolution is rows = output pixels, inner = 3·3·channels.
C_BATCH = 64
C_PRODUCTS = [(28 * 28, 3 * 3 * 1, 32), (14 * 14, 3 * 3 * 32, 64), (1, 7 * 7 * 64, 10)]
C_FORWARD, C_TRAIN = (f * C_BATCH for f in dense_flops([(r * i, o) for r, i, o in C_PRODUCTS]))


def b_memory_bound():
    """Bytes that workload B needs at least, and the parts: the data set in float, the model
    (weights, gradients, Adam's two moments, BatchNorm's moving statistics) and one batch of
    activations (every layer's output and gradient, the dropout masks, the gathered batch)."""
    f = 4
    data = (B_TRAIN + B_TEST) * B_PIXELS * f          # images
    data += B_TRAIN * B_CLASSES * f                     # one-hot training targets
    data += (B_TRAIN + B_TEST) * 4                      # integer labels
    data += B_TEST * B_CLASSES * f                      # predict's output
    parameters = sum(i * o + o for i, o in B_LAYERS) + 2 * 2 * B_HIDDEN  # + γ, β of both BatchNorms
    model = 4 * parameters * f + 2 * 2 * B_HIDDEN * f
    widths = [B_HIDDEN] * 8 + [B_CLASSES]  # Dense, BN, ReLU, Dropout twice; Dense softmax
    activations = 2 * B_BATCH * sum(widths) * f + 2 * B_BATCH * B_HIDDEN * f + B_BATCH * (B_PIXELS + B_CLASSES) * f
    total = data + model + activations
    return 1.2 * total, dict(data=data, model=model, activations=activations)


# ---- running programs -------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPUS = os.cpu_count() or 1


def busy_seconds():
    """CPU-seconds all CPUs have spent not idle since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Runner:
    def __init__(self, quiet_budget_s, retries, log):
        self.quiet_budget_s = quiet_budget_s
        self.retries = retries
        self.waited_s = 0.0
        self.log = log
        self.runs = []

    def wait_until_idle(self):
        """Waits until other processes use < 10% of one CPU over a second, while the budget lasts."""
        while True:
            before = busy_seconds()
            time.sleep(1.0)
            if busy_seconds() - before < 0.1 or self.waited_s >= self.quiet_budget_s:
                return
            self.waited_s += 1.0

    def run(self, label, command, env=None):
        retries = self.retries
        for attempt in range(retries + 1):
            self.wait_until_idle()
            busy, children, start = busy_seconds(), children_cpu_seconds(), time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - start
            # Less two clock ticks per CPU: /proc/stat counts in ticks.
            foreign = (busy_seconds() - busy) - (children_cpu_seconds() - children) - 2 * CPUS / CLOCK_TICKS
            if done.returncode != 0:
                raise SystemExit(f"{label}: {shlex.join(command)} failed ({done.returncode}):\n{done.stderr}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["interference"] = max(0.0, foreign / wall)
            result["wall_s"] = wall
            # Retry a disturbed run while there is time left to wait for an idle machine.
            retry = result["interference"] > 0.15 and attempt < retries and self.waited_s < self.quiet_budget_s
            self.log(f"{label:28s} {wall:7.1f} s  other load {result['interference']:.2f} CPU" + ("  (retry)" if retry else ""))
            if not retry:
                break
        result["label"] = label
        self.runs.append(result)
        return result


# ---- statistics and formatting ---------------------------------------------------------------

def summary(values):
    return dict(median=statistics.median(values), min=min(values), max=max(values), n=len(values))


def fmt(s, digits=3, scale=1.0, unit=""):
    if s is None:
        return "—"
    m, lo, hi = (s[k] * scale for k in ("median", "min", "max"))
    text = f"{m:.{digits}g}{unit}"
    if s["n"] > 1:
        text += f" ({lo:.{digits}g}–{hi:.{digits}g}{unit})"
    return text + (" †" if s.get("disturbed") else "")


def ratio(a, b, digits=3):
    return "—" if a is None or b is None else f"{a['median'] / b['median']:.{digits}g}"


def collect(runs, key, transform=lambda r, v: v):
    if not runs:
        return None
    s = summary([transform(r, r[key]) for r in runs])
    s["disturbed"] = any(r["interference"] > 0.15 for r in runs)
    return s


# ---- the suite --------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", required=True, help="folder of the built benchmark programs (…/bench)")
    parser.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each B and peak figure (A: reps + 2)")
    parser.add_argument("--accuracy-epochs", type=int, default=5)
    parser.add_argument("--tinydnn-a-steps", type=int, default=200, help="tiny-dnn is slow: fewer A steps")
    parser.add_argument("--tinydnn-b-steps", type=int, default=50, help="tiny-dnn: B batches timed, scaled to an epoch")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--quiet-budget", type=float, default=300, help="seconds the suite may wait for an idle machine")
    parser.add_argument("--smoke", action="store_true", help="every program once with --smoke: checks the driver only")
    parser.add_argument("--command", default=None, help="the command to name in the report")
    parser.add_argument("--from-raw", metavar="JSON", help="write the report from an earlier run's raw_results.json")
    parser.add_argument("--distributed-only", action="store_true",
                        help="run only the data-parallel figures (E) and report them with the other figures of the "
                             "build folder's raw_results.json")
    args = parser.parse_args()
    if args.from_raw:
        with open(args.from_raw) as f:
            raw = json.load(f)
        runner = Runner(raw["waited_s"], 0, print)
        runner.waited_s, runner.runs = raw["waited_s"], raw["runs"]
        finish(args, runner, raw["elapsed_s"], raw["machine"])
        return

    def program(name):
        path = os.path.join(args.build, name)
        return path if os.path.exists(path) else None

    for required in ("a_minidl", "b_minidl", "c_minidl", "d_minidl", "a_eigen", "b_eigen", "fma_peak", "products"):
        if not program(required):
            raise SystemExit(f"run_suite.py: {os.path.join(args.build, required)} not found; build with MINIDL_BUILD_BENCH=ON")
    torch_ok = not args.no_torch and subprocess.run([sys.executable, "-c", "import torch, numpy"],
                                                    capture_output=True).returncode == 0
    tiny_ok = program("a_tinydnn") and program("b_tinydnn")
    threads = [1, 2] if CPUS >= 2 else [1]
    reps = 1 if args.smoke else args.reps
    started = time.time()
    runner = Runner(0 if args.smoke else args.quiet_budget, 0 if args.smoke else 2, lambda line: print(line, flush=True))
    smoke = ["--smoke"] if args.smoke else []
    data = ["--data", args.data]

    def cxx(name, *extra):
        return [program(name), *extra, *smoke]

    def torch_command(workload, n, *extra):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n), OPENBLAS_CORETYPE="SkylakeX")
        return [sys.executable, os.path.join(HERE, "torch_bench.py"), "--workload", workload,
                "--threads", str(n), *extra, *smoke], env

    mpirun = shutil.which("mpirun")
    e_programs = [(model, name) for model, name in (("B", "b_distributed"), ("C", "c_distributed")) if program(name)]
    e_ok = e_programs and mpirun
    # Workload E: B and C as data-parallel fits (synchronized BatchNorm): 1 process x 1 and 2 threads, 2 processes
    # x 1 thread over shared memory and over TCP alone.
    e_configs = [(1, 1, "shared memory"), (1, 2, "shared memory"), (2, 1, "shared memory"), (2, 1, "TCP")]

    def run_e():
        mpi_env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        for _ in range(reps):
            for model, name in e_programs:
                for processes, n, transport in e_configs:
                    tcp = ["--mca", "btl", "tcp,self"] if transport == "TCP" else []
                    command = [mpirun, "--oversubscribe", "-np", str(processes), *tcp, "--bind-to", "none",
                               *cxx(name, "--threads", str(n), *data)]
                    label = f"E {model} {processes}P x {n}T {transport}"
                    runner.run(label, command, mpi_env)["transport"] = transport

    if args.distributed_only:
        if not e_ok:
            raise SystemExit("run_suite.py: --distributed-only needs bench/b_distributed or c_distributed (MPI) and "
                             "mpirun")
        raw_path = os.path.join(args.build, "raw_results.json")
        with open(raw_path) as f:
            raw = json.load(f)
        run_e()
        runner.runs = [r for r in raw["runs"] if r["workload"] != "E"] + runner.runs
        runner.waited_s += raw["waited_s"]
        raw["runs"] = runner.runs
        with open(raw_path, "w") as f:
            json.dump(raw, f, indent=1)
        commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        machine = raw["machine"] + [f"- **Workload E**: measured afterwards with `--distributed-only` at commit "
                                    f"{commit or 'unknown'}, {when}"]
        finish(args, runner, raw["elapsed_s"] + time.time() - started, machine)
        return

    # The FMA peak, 1 and 2 threads.
    for _ in range(reps):
        for n in threads:
            runner.run(f"peak {n}T", cxx("fma_peak", "--threads", str(n)))

    # Workload A, one thread.
    for _ in range(1 if args.smoke else reps + 2):
        runner.run("A minidl", cxx("a_minidl"))
        runner.run("A eigen", cxx("a_eigen"))
        if torch_ok:
            command, env = torch_command("a", 1)
            runner.run("A pytorch", command, env)
        if tiny_ok:
            steps = [] if args.smoke else ["--steps", str(args.tinydnn_a_steps)]
            runner.run("A tiny-dnn", cxx("a_tinydnn", *steps))

    # Workload B: one epoch per run, at 1 and 2 threads.
    for _ in range(reps):
        for n in threads:
            t = ["--threads", str(n)]
            runner.run(f"B minidl {n}T", cxx("b_minidl", *t, *data))
            runner.run(f"B eigen {n}T", cxx("b_eigen", *t, *data))
            if torch_ok:
                command, env = torch_command("b", n, "--data", args.data)
                runner.run(f"B pytorch {n}T", command, env)
            tiny = program("b_tinydnn" if n == 1 else "b_tinydnn_mt")
            if tiny_ok and tiny:
                steps = [] if args.smoke else ["--steps", str(args.tinydnn_b_steps)]
                runner.run(f"B tiny-dnn {n}T", [tiny, *t, *data, *steps, *smoke])

    # Workload C: the conv net, 1 and 2 threads, next to PyTorch.
    for _ in range(reps):
        for n in threads:
            runner.run(f"C minidl {n}T", cxx("c_minidl", "--threads", str(n), *data))
            if torch_ok:
                command, env = torch_command("c", n, "--data", args.data)
                runner.run(f"C pytorch {n}T", command, env)

    # Workload D: a frozen conv base and a trained head, fit with the prefix cache and without, next to PyTorch's
    # loop (which recomputes the base on every batch), 1 and 2 threads.
    for _ in range(reps):
        for n in threads:
            t = ["--threads", str(n)]
            runner.run(f"D minidl cache {n}T", cxx("d_minidl", *t, "--cache", "on", *data))
            runner.run(f"D minidl no cache {n}T", cxx("d_minidl", *t, "--cache", "off", *data))
            if torch_ok:
                command, env = torch_command("d", n, "--data", args.data)
                runner.run(f"D pytorch {n}T", command, env)

    if e_ok:
        run_e()

    # The workloads' products one at a time, minidl's kernel next to Eigen's (one program), one thread.
    for _ in range(reps):
        runner.run("products", cxx("products", "--threads", "1"))

    # Workload B's test accuracy after a few epochs (one thread: reproducible), full run only.
    if not args.smoke:
        e = ["--epochs", str(args.accuracy_epochs), "--threads", "1"]
        runner.run("B accuracy minidl", cxx("b_minidl", *e, *data))
        runner.run("B accuracy eigen", cxx("b_eigen", *e, *data))
        if torch_ok:
            command, env = torch_command("b", 1, *e[:2], "--data", args.data)
            runner.run("B accuracy pytorch", command, env)

    elapsed = time.time() - started
    machine = machine_lines(args.build)
    with open(os.path.join(args.build, "raw_results.json"), "w") as f:
        json.dump(dict(elapsed_s=elapsed, waited_s=runner.waited_s, machine=machine, runs=runner.runs), f, indent=1)
    finish(args, runner, elapsed, machine)


def key_of(run):
    """Which figure a run belongs to: ("peak", threads), ("A", impl), ("B", impl, threads), ("C", impl, threads),
    ("D", impl, threads), ("E", model, processes, threads, transport), ("acc", impl) or ("products",)."""
    if run["workload"] == "products":
        return ("products",)
    if run["workload"] == "D":
        return ("D", run["impl"], run["threads"])
    if run["workload"] == "E":
        return ("E", run.get("model", "B"), run["processes"], run["threads"], run["transport"])
    if run["workload"] in ("peak", "C"):
        return (run["workload"], run["impl"], run["threads"]) if run["workload"] == "C" else ("peak", run["threads"])
    if run["workload"] == "A":
        return ("A", run["impl"])
    return ("acc", run["impl"]) if run["label"].startswith("B accuracy") else ("B", run["impl"], run["threads"])


def finish(args, runner, elapsed, machine):
    results = {}
    for run in runner.runs:
        results.setdefault(key_of(run), []).append(run)
    torch_ok = ("A", "pytorch") in results
    tiny_ok = ("A", "tiny-dnn") in results
    threads = sorted({k[1] for k in results if k[0] == "peak"})
    report = write_report(args, results, elapsed, runner, torch_ok, tiny_ok, threads, machine)
    with open(args.out, "w") as f:
        f.write(report)
    print(f"wrote {args.out} ({elapsed / 60:.1f} min)")


# ---- the report -------------------------------------------------------------------------------

def machine_lines(build):
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    isa = "AVX-512" if " avx512f" in flags else ("AVX2" if " avx2" in flags else "SSE")
    info = {}
    path = os.path.join(build, "build_info.txt")
    if os.path.exists(path):
        info = dict(line.rstrip("\n").split("=", 1) for line in open(path) if "=" in line)

    def package(name):
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "not installed"

    torch = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    git = subprocess.run(["git", "-C", HERE, "log", "-1", "--format=%h"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", HERE, "status", "--porcelain", "--", "../include"], capture_output=True, text=True)
    version = (f"commit {git.stdout.strip()}" + (" with uncommitted changes in include/" if dirty.stdout.strip() else "")
               if git.returncode == 0 else "not a git checkout")
    return [
        f"- **minidl**: {version}",
        f"- **CPU**: {model}, {CPUS} cores as seen by the OS ({isa}), Linux {platform.release()}",
        f"- **Compiler**: {info.get('compiler', '?')}, {info.get('build_type', '?')}, flags `{' '.join(info.get('flags', '?').split())}`; Eigen {info.get('eigen', '?')}",
        f"- **PyTorch**: {torch.stdout.strip() or 'not available'} (Debian python3-torch {package('python3-torch')}), "
        f"OpenBLAS {package('libopenblas0-pthread')} with OPENBLAS_CORETYPE=SkylakeX; **tiny-dnn** {package('tiny-dnn')}",
        f"- **Date**: {date}",
    ]


def write_report(args, results, elapsed, runner, torch_ok, tiny_ok, threads, machine):
    get = results.get
    impls = ["minidl", "eigen"] + (["pytorch"] if torch_ok else []) + (["tiny-dnn"] if tiny_ok else [])
    names = {"minidl": "minidl", "eigen": "Eigen reference", "pytorch": "PyTorch", "tiny-dnn": "tiny-dnn"}
    peak = {n: collect(get(("peak", n)), "gflops") for n in threads}
    lines = ["# minidl benchmark results", ""]
    command = args.command or "/usr/bin/python3 bench/run_suite.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines += [f"Produced by `{command}` in {elapsed / 60:.1f} minutes"
              + (" (**smoke run: tiny data, one repetition; the figures mean nothing**)" if args.smoke else "") + ".", ""]
    lines += machine + [""]
    lines += ["Every figure: median over runs (min–max), each run a separate process. "
              f"A: {args.reps + 2} runs; B, C, D, the products and the peak: {args.reps} runs. "
              "Ratios are of medians. † = a run of this figure had other processes using over 15% of a CPU "
              "(even after retries).", ""]

    # Peak.
    lines += ["## Measured fp32 FMA peak", "", "| threads | GFLOP/s |", "|---|---|"]
    for n in threads:
        lines.append(f"| {n} | {fmt(peak[n], 4)} |")
    lines.append("")

    # Workload A.
    a = {i: (collect(get(("A", i)), "train_us"), collect(get(("A", i)), "infer_us"),
             collect(get(("A", i)), "max_rss_kib")) for i in impls}
    p1 = peak[1]["median"] if peak.get(1) else None
    lines += ["## Workload A: 100 → Dense 1000 ReLU → Dense 1, MSE, Adam, batch 32, 1 thread", "",
              "| implementation | µs per training step | µs per inference batch | training GFLOP/s (% of peak) "
              "| minidl ÷ this, training | minidl ÷ this, inference | max RSS (MiB) |",
              "|---|---|---|---|---|---|---|"]
    for i in impls:
        train, infer, rss = a[i]
        if train is None:
            continue
        gflops = A_TRAIN / train["median"] / 1e3
        share = f" ({100 * gflops / p1:.0f}%)" if p1 else ""
        lines.append(f"| {names[i]} | {fmt(train, 4)} | {fmt(infer, 4)} | {gflops:.1f}{share} | "
                     f"{ratio(a['minidl'][0], train)} | {ratio(a['minidl'][1], infer)} | {fmt(rss, 3, 1 / 1024)} |")
    lines.append("")

    # Workload B.
    def epoch(runs):  # seconds per 60000-image epoch
        return collect(runs, "epoch_s", lambda r, v: statistics.median(v) * B_TRAIN / r["train_samples"])

    b = {(i, n): epoch(get(("B", i, n))) for i in impls for n in threads}
    ips = {(i, n): collect(get(("B", i, n)), "predict_images_per_s") for i in impls for n in threads}
    rss = {i: collect(get(("B", i, 1)), "max_rss_kib") for i in impls}
    acc = {i: collect(get(("acc", i)), "test_accuracy") for i in impls}
    lines += ["## Workload B: Fashion-MNIST MLP with BatchNorm and Dropout, Adam, batch 128", "",
              "784 → Dense 512 → BatchNorm → ReLU → Dropout(0.2) → Dense 512 → BatchNorm → ReLU → Dropout(0.2) "
              "→ Dense 10 softmax, categorical cross-entropy.", ""]
    head = "| implementation |" + "".join(f" s/epoch {n}T | GFLOP/s {n}T (% of peak) |" for n in threads)
    head += (" speed-up 2T/1T |" if len(threads) > 1 else "") + "".join(f" predict images/s {n}T |" for n in threads)
    head += f" test accuracy ({args.accuracy_epochs} epochs) | max RSS 1T (MiB) |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for i in impls:
        if b[(i, 1)] is None:
            continue
        row = f"| {names[i]} |"
        for n in threads:
            s = b[(i, n)]
            if s is None:
                row += " — | — |"
                continue
            gflops = B_TRAIN_PER_SAMPLE * B_TRAIN / s["median"] / 1e9
            share = f" ({100 * gflops / peak[n]['median']:.0f}%)" if peak.get(n) else ""
            row += f" {fmt(s)} | {gflops:.1f}{share} |"
        if len(threads) > 1:
            row += f" {ratio(b[(i, 1)], b[(i, 2)])} |"
        row += "".join(f" {fmt(ips[(i, n)])} |" for n in threads)
        accuracy = "not comparable (see notes)" if i == "tiny-dnn" else fmt(acc[i], 4, 100, "%")
        row += f" {accuracy} | {fmt(rss[i], 3, 1 / 1024)} |"
        lines.append(row)
    lines.append("")
    lines += ["Time ratios, minidl ÷ other (below 1: minidl is faster):", "",
              "| other | A training | A inference |" + "".join(f" B epoch {n}T |" for n in threads), "|---|---|---|" + "---|" * len(threads)]
    for i in impls[1:]:
        lines.append(f"| {names[i]} | {ratio(a['minidl'][0], a[i][0])} | {ratio(a['minidl'][1], a[i][1])} |"
                     + "".join(f" {ratio(b[('minidl', n)], b[(i, n)])} |" for n in threads))
    lines.append("")

    # Workload C.
    c = {(i, n): (collect(get(("C", i, n)), "train_ms"), collect(get(("C", i, n)), "infer_ms"))
         for i in ("minidl", "pytorch") for n in threads}
    if c[("minidl", 1)][0] is not None:
        lines += ["## Workload C: a small convolutional net on Fashion-MNIST batches, Adam, batch 64", "",
                  "28×28×1 → Conv2D 32 3×3 same → BatchNorm → ReLU → MaxPooling 2×2 → Conv2D 64 3×3 same → BatchNorm "
                  "→ ReLU → MaxPooling 2×2 → Flatten → Dense 10 softmax, categorical cross-entropy.", "",
                  "| implementation | threads | ms per training step | training GFLOP/s (% of peak) "
                  "| ms per inference batch | minidl ÷ this, training | minidl ÷ this, inference |",
                  "|---|---|---|---|---|---|---|"]
        for i in ("minidl", "pytorch"):
            for n in threads:
                train, infer = c[(i, n)]
                if train is None:
                    continue
                gflops = C_TRAIN / train["median"] / 1e6
                share = f" ({100 * gflops / peak[n]['median']:.0f}%)" if peak.get(n) else ""
                lines.append(f"| {names[i]} | {n} | {fmt(train, 4)} | {gflops:.1f}{share} | {fmt(infer, 4)} | "
                             f"{ratio(c[('minidl', n)][0], train)} | {ratio(c[('minidl', n)][1], infer)} |")
        lines.append("")

    # Workload D.
    d_impls = {"minidl-cache": "minidl, prefix cache", "minidl-nocache": "minidl, no cache", "pytorch": "PyTorch"}
    d = {(i, n): {key: collect(get(("D", i, n)), key) for key in
                  ("first_epoch_s", "later_epoch_median_s", "fit_s", "last_loss", "test_loss", "test_accuracy",
                   "max_rss_kib")}
         for i in d_impls for n in threads if get(("D", i, n))}
    d_any = next((r for k, runs in results.items() if k[0] == "D" for r in runs), None)
    if d_any:
        cached = next((r for k, runs in results.items() if k[:2] == ("D", "minidl-cache") for r in runs), d_any)
        lines += ["## Workload D: a frozen convolutional base and a trained head (fit's prefix cache), Adam, batch 32", "",
                  "28×28×1 → Conv2D 16 3×3 same → BatchNorm → ReLU → MaxPooling 2×2 → Conv2D 32 3×3 same → BatchNorm "
                  "→ ReLU → MaxPooling 2×2 → Conv2D 64 3×3 same → BatchNorm → ReLU → GlobalAveragePooling2D (the base) "
                  "→ Dense 64 ReLU → Dropout(0.3) → Dense 10 softmax (the head), categorical cross-entropy. The whole "
                  "model is trained for one epoch on the first 2,048 images (untimed), then the base is frozen and the "
                  f"head fit for {d_any['epochs']} epochs on {d_any['train_samples']:,} training images; test figures "
                  f"on {d_any['test_samples']:,} test images. minidl: `PrefixCache::always` (the base's outputs "
                  "computed once per fit) or `PrefixCache::never` (the base runs on every batch); PyTorch: the base in "
                  "eval() with requires_grad False, its forward under torch.no_grad() on every batch. The first epoch "
                  "includes building the cache.", "",
                  "| implementation | threads | first epoch (s) | epochs 2+ (median, s) | whole fit (s) "
                  "| final training loss | test loss | test accuracy | max RSS (MiB) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for i, name in d_impls.items():
            for n in threads:
                if (i, n) not in d:
                    continue
                f = d[(i, n)]
                lines.append(f"| {name} | {n} | {fmt(f['first_epoch_s'])} | {fmt(f['later_epoch_median_s'])} | "
                             f"{fmt(f['fit_s'])} | {fmt(f['last_loss'], 6)} | {fmt(f['test_loss'], 4)} | "
                             f"{fmt(f['test_accuracy'], 4, 100, '%')} | {fmt(f['max_rss_kib'], 3, 1 / 1024)} |")
        lines += ["", f"The cache holds {cached['train_samples']:,} images × 64 features × 4 bytes = "
                  f"{cached['cache_bytes'] / 2**20:.1f} MiB; `PrefixCache::automatic`'s budget "
                  "(`detail::default_cache_budget()`, a quarter of the physical memory) is "
                  f"{cached['default_cache_budget_bytes'] / 2**30:.2f} GiB on this machine.", ""]

    # The products one at a time: each run lists every product; a product's figures are matched across runs by
    # Workload E: B and C as data-parallel fits, per step of each run's last epoch (C's first one warms up).
    e_keys = sorted((k for k in results if k[0] == "E"), key=lambda k: (k[1], k[2], k[4] != "shared memory", k[3]))

    def per_step(r, v):  # milliseconds per step of the last epoch
        return 1e3 * (v[-1] if isinstance(v, list) else v) / r["steps_per_epoch"]

    e = {}
    for k in e_keys:
        runs = results[k]
        e[k] = dict(step=collect(runs, "epoch_s", per_step), mpi=collect(runs, "mpi_s", per_step),
                    calls=collect(runs, "mpi_calls", lambda r, v: v[-1] / r["steps_per_epoch"]),
                    bytes=collect(runs, "mpi_bytes", lambda r, v: v[-1] / r["steps_per_epoch"]),
                    floor=collect(runs, "allreduce_floor_s", per_step)
                    if all("allreduce_floor_s" in r for r in runs) else None,
                    accuracy=collect(runs, "test_accuracy") if all("test_accuracy" in r for r in runs) else None,
                    identical=all(r["replicas_identical"] for r in runs))
    e_models = sorted({k[1] for k in e_keys})
    if e:
        lines += ["## Workload E: workloads B and C as data-parallel fits (MPI), synchronized BatchNorm", "",
                  "B's and C's models and data, `FitOptions::replicas = MpiReplicas` (`bench/b_distributed.cpp`, "
                  "`bench/c_distributed.cpp`, under `mpirun --oversubscribe --bind-to none`; TCP: "
                  "`--mca btl tcp,self`): each global batch (B: 128, C: 64) split across the processes, every "
                  "BatchNorm synchronized, so that every configuration trains the one-process model. B: one epoch "
                  "of 469 steps; C: two epochs of 110 steps, the second counts. MPI calls, bytes (what one process "
                  "contributed to the collectives) and time in MPI (waiting for the other process included) are "
                  "replica 0's. The all-reduce floor: the same bytes per step in one `MPI_Allreduce` each, timed "
                  "alone after the fit (what the step's communication costs with no computing around it).", "",
                  "| model | processes × threads | transport | ms per step | speed-up over 1 × 1 | efficiency "
                  "| MPI calls per step | KiB per step | ms in MPI per step | all-reduce floor, ms per step "
                  "| test accuracy | replicas equal |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for k in e_keys:
            f, base = e[k], e.get(("E", k[1], 1, 1, "shared memory"))
            speed = base["step"]["median"] / f["step"]["median"] if base else None
            workers = k[2] * k[3]
            lines.append(f"| {k[1]} | {k[2]} × {k[3]} | {k[4] if k[2] > 1 else '—'} | {fmt(f['step'])} | "
                         f"{f'{speed:.2f}' if speed else '—'} | {f'{100 * speed / workers:.0f}%' if speed else '—'} | "
                         f"{f['calls']['median']:.1f} | {f['bytes']['median'] / 1024:.0f} | {fmt(f['mpi'])} | "
                         f"{fmt(f['floor']) if k[2] > 1 else '—'} | {fmt(f['accuracy'], 4, 100, '%')} | "
                         f"{'yes' if f['identical'] else '**no**'} |")
        for model in e_models:
            one, two = e.get(("E", model, 1, 1, "shared memory")), e.get(("E", model, 2, 1, "shared memory"))
            if not (one and two and two["floor"]):
                continue
            t1, floor = one["step"]["median"], two["floor"]["median"]
            lines += ["", f"{model}, the most 2 processes could gain on these 2 cores: the all-reduce is work of the "
                      "same cores (a memory copy and a sum, with no core left to overlap it with the backward pass), "
                      f"so even if everything else halved, a step would take {t1:.2f} / 2 + {floor:.2f} ms (the "
                      f"floor) and the speed-up be at most {t1 / (t1 / 2 + floor):.2f} ×."]
        two = e.get(("E", "B", 2, 1, "shared memory"))
        base = e.get(("E", "B", 1, 1, "shared memory"))
        if two:
            payload = two["bytes"]["median"]
            step_compute = base["step"]["median"] / 1e3 / 2 if base else None
            lines += ["", "What a cluster adds per step of B (a model, not a measurement): a ring all-reduce of S "
                      "bytes over R processes costs about 2(R − 1)·α + 2·(R − 1)/R · S/β (α the latency, β the "
                      "bandwidth), and each of the c − 1 small collectives about 2·⌈log₂ R⌉·α. Measured here: "
                      f"S ≈ {payload / 1024:.0f} KiB per step (the gradients of every trainable tensor, the "
                      "BatchNorm statistics and the loss and metric sums, in float), "
                      f"c = {two['calls']['median']:.0f} collectives per step. On 10 Gbit/s Ethernet "
                      "(β ≈ 1.2 GB/s, α ≈ 20 µs) with R = 8, that is about "
                      f"{1e3 * (2 * 7 * 20e-6 + 2 * 7 / 8 * payload / 1.2e9 + (two['calls']['median'] - 1) * 6 * 20e-6):.1f} ms "
                      "per step"
                      + (f", against {1e3 * step_compute * 2 / 8:.1f} ms of computing per process for a global "
                         "batch of 128 (this machine's one-thread step ÷ 8): such a run is bound by the network "
                         "unless the global batch grows with R" if step_compute else "")
                      + "; on one machine the transfer is a memory copy."]
        lines.append("")

    # (workload, name).
    product_runs = get(("products",)) or []
    products = {}
    for run in product_runs:
        for p in run["products"]:
            products.setdefault((p["workload"], p["name"]), []).append(p)
    if products:
        disturbed = any(r["interference"] > 0.15 for r in product_runs)

        def gflops(figures, key):
            s = summary([p[key] for p in figures])
            s["disturbed"] = disturbed
            return s

        lines += ["## Products one at a time (1 thread)", "",
                  "The float products of the workloads' layers, each timed on its own (`bench/products.cpp`): "
                  "minidl's kernel (`detail::gemm`) next to Eigen's product (`c.noalias() = a * b`, then "
                  "`c.rowwise() += bias`) on the same operands in the same run. GFLOP/s = 2·m·n·k ÷ seconds per "
                  "product, C (m × n) = A (m × k) · B (k × n).", "",
                  "| product | workload | m × n × k | minidl GFLOP/s (% of the 1-thread peak) | Eigen GFLOP/s "
                  "| minidl ÷ Eigen speed |",
                  "|---|---|---|---|---|---|"]
        for (workload, name), figures in products.items():
            first = figures[0]
            mine, eigen = gflops(figures, "minidl_gflops"), gflops(figures, "eigen_gflops")
            share = f", {100 * mine['median'] / p1:.0f}%" if p1 else ""
            lines.append(f"| {name} ({first['role']}) | {workload} | {first['m']} × {first['n']} × {first['k']} | "
                         f"{fmt(mine)}{share} | {fmt(eigen)} | {ratio(mine, eigen)} |")
        lines.append("")

    # Targets.
    bound, parts = b_memory_bound()
    lines += ["## Targets", "", "| target | measured | |", "|---|---|---|"]

    def target(text, value, ok, shown):
        if value is None:
            lines.append(f"| {text} | not measured | — |")
        else:
            lines.append(f"| {text} | {shown} | {'**met**' if ok else '**not met**'} |")

    def speedup(slow, fast):
        return None if slow is None or fast is None else slow["median"] / fast["median"]

    for what, k in (("training", 0), ("inference", 1)):
        r = speedup(a["minidl"][k], a["eigen"][k])
        target(f"A {what} ≤ 1.15 × the Eigen reference", r, r is not None and r <= 1.15, f"{r:.2f} ×" if r else "")
        r = speedup(a["pytorch"][k], a["minidl"][k]) if torch_ok else None
        target(f"A {what} ≥ 4 × faster than PyTorch", r, r is not None and r >= 4, f"{r:.2f} × faster" if r else "")
    r = speedup(b.get(("pytorch", 1)), b[("minidl", 1)]) if torch_ok else None
    target("B ≥ 1.6 × faster than PyTorch per epoch, 1 thread", r, r is not None and r >= 1.6, f"{r:.2f} × faster" if r else "")
    share = (B_TRAIN_PER_SAMPLE * B_TRAIN / b[("minidl", 1)]["median"] / 1e9 / peak[1]["median"]) if b[("minidl", 1)] and peak.get(1) else None
    target("B ≥ 60% of the FMA peak over the epoch, 1 thread", share, share is not None and share >= 0.6,
           f"{100 * share:.0f}%" if share is not None else "")
    if len(threads) > 1:
        r = speedup(b[("minidl", 1)], b[("minidl", 2)])
        target("B 2 threads ≥ 1.6 × faster than 1 thread", r, r is not None and r >= 1.6, f"{r:.2f} ×" if r else "")
    for n in threads:
        if ("C", "minidl", n) in results:
            r = speedup(c[("pytorch", n)][0], c[("minidl", n)][0]) if torch_ok else None
            target(f"C training step at least as fast as PyTorch, {n} thread{'s' if n > 1 else ''}", r,
                   r is not None and r >= 1, f"{r:.2f} × faster" if r else "")
    gap = (acc["minidl"]["median"] - acc["pytorch"]["median"]) if torch_ok and acc.get("minidl") and acc.get("pytorch") else None
    target("B test accuracy ≈ PyTorch's (within 1 percentage point)", gap, gap is not None and abs(gap) <= 0.01,
           f"{100 * acc['minidl']['median']:.2f}% vs {100 * acc['pytorch']['median']:.2f}%" if gap is not None else "")
    m = rss["minidl"]["median"] * 1024 if rss.get("minidl") else None
    target("B peak memory ≤ 1.2 × (data set in float + model + one batch of activations)", m,
           m is not None and m <= bound, f"{m / 2**20:.0f} MiB (bound {bound / 2**20:.0f} MiB)" if m else "")
    if d_any:
        def d_fig(impl, n, key):
            return d[(impl, n)][key] if (impl, n) in d else None

        for n in threads:
            per = f"{n} thread{'s' if n > 1 else ''}"
            r = speedup(d_fig("minidl-nocache", n, "later_epoch_median_s"), d_fig("minidl-cache", n, "later_epoch_median_s"))
            target(f"D epochs 2+ ≥ 10 × faster with the cache than without, {per}", r, r is not None and r >= 10,
                   f"{r:.1f} × faster" if r else "")
            r = speedup(d_fig("pytorch", n, "fit_s"), d_fig("minidl-cache", n, "fit_s"))
            target(f"D whole fit with the cache ≥ 5 × faster than PyTorch's loop, {per}", r, r is not None and r >= 5,
                   f"{r:.1f} × faster" if r else "")
            on, off = d_fig("minidl-cache", n, "last_loss"), d_fig("minidl-nocache", n, "last_loss")
            # Every run's final loss, not the medians: the cached fit is meant to be the uncached one.
            losses = {mode: sorted({r["last_loss"] for r in get(("D", mode, n)) or []})
                      for mode in ("minidl-cache", "minidl-nocache")}
            target(f"D final training loss, cached = uncached, {per}", on if on and off else None,
                   on is not None and off is not None and losses["minidl-cache"] == losses["minidl-nocache"],
                   f"{', '.join(f'{v:.6g}' for v in losses['minidl-cache'])} cached, "
                   f"{', '.join(f'{v:.6g}' for v in losses['minidl-nocache'])} uncached")
        rss_d = d_fig("minidl-cache", 1, "max_rss_kib") if threads else None
        m = rss_d["median"] * 1024 if rss_d else None
        budget = cached["default_cache_budget_bytes"]
        target("D peak memory with the cache ≤ the cache budget (a quarter of the physical memory), 1 thread", m,
               m is not None and m <= budget,
               f"{m / 2**20:.0f} MiB, of which the cache {cached['cache_bytes'] / 2**20:.1f} MiB "
               f"(budget {budget / 2**30:.2f} GiB)" if m else "")
    for model in sorted({k[1] for k in e}):
        one = e.get(("E", model, 1, 1, "shared memory"))
        for transport, what in (("shared memory", ""), ("TCP", " over TCP alone (no shared memory)")):
            other = e.get(("E", model, 2, 1, transport))
            if one and other:
                r = speedup(one["step"], other["step"])
                target(f"E {model}: 2 processes × 1 thread{what} ≥ 1.8 × 1 process × 1 thread (≥ 90% efficiency)",
                       r, r >= 1.8, f"{r:.2f} × ({50 * r:.0f}%)")
    lines.append("")

    # Notes.
    lines += ["## Notes", "",
              f"- **FLOPs counted**: the Dense layers' products only. Per sample, forward 2·Σ in·out; backward "
              f"2·Σ in·out for the kernel gradients plus 2·Σ in·out for the input gradients of every layer but the "
              f"first (no implementation computes the gradient of the data). B: forward {B_FORWARD:,}, training "
              f"{B_TRAIN_PER_SAMPLE:,} FLOPs per sample ({B_TRAIN_PER_SAMPLE / 1e6:.2f} MFLOP), "
              f"{B_TRAIN_PER_SAMPLE * B_TRAIN / 1e9:.1f} GFLOP per epoch. A: {A_TRAIN:,} FLOPs per training step, "
              f"{A_FORWARD:,} per inference batch. Biases, BatchNorm, ReLU, Dropout, softmax, the loss and Adam are "
              f"O(features) per sample or O(parameters) per step, about 1–2% more, not counted.",
              f"- **C's FLOPs**: the convolutions as products (im2col rows × 3·3·channels × filters) and the Dense "
              f"layer, counted as above: {C_FORWARD / 1e6:.0f} MFLOP forward, {C_TRAIN / 1e6:.0f} MFLOP per training "
              "step of 64 images. Each implementation in its own layout: minidl channels-last (N, H, W, C), PyTorch "
              "its native NCHW. Both take the same consecutive training batches; timed as A (blocks of steps after a "
              "warm-up block, the median block).",
              "- **Peak**: `fma_peak`, a register-only loop of independent fp32 FMAs (16 accumulators, "
              "AVX-512 if the CPU has it, else AVX2), each run the best of 5 timings; GFLOP/s ÷ peak uses the peak "
              "at the same thread count.",
              f"- **Memory bound** (B): 1.2 × (data {parts['data'] / 2**20:.1f} MiB: train and test images as float, "
              f"one-hot training targets, labels, predict's output; model {parts['model'] / 2**20:.1f} MiB: weights, "
              f"gradients, Adam's m and v, moving statistics; one batch of activations "
              f"{parts['activations'] / 2**20:.1f} MiB: every layer's output and gradient, dropout masks, the batch) "
              f"= {bound / 2**20:.0f} MiB. Max RSS is the process's peak resident set (getrusage), libraries "
              "included; PyTorch's includes the interpreter and libtorch.",
              "- **Eigen reference** (`bench/reference.hpp`, `a_eigen.cpp`, `b_eigen.cpp`): the same maths written "
              "directly as Eigen expressions (row-major like minidl, noalias products, Adam as array expressions, the "
              "softmax and cross-entropy gradient fused into (p − t)/N), same initial weights and dropout generator.",
              "- **PyTorch** (`bench/torch_bench.py`): nn.Sequential, torch.optim.Adam (ε 1e-7), CrossEntropyLoss on "
              "logits, BatchNorm1d(ε 1e-3, momentum 0.01 = Keras's 0.99), Glorot-uniform init; torch.set_num_threads(n) "
              "and OPENBLAS_NUM_THREADS=n; OPENBLAS_CORETYPE=SkylakeX because this OpenBLAS otherwise picks slow "
              "kernels on this CPU.",
              f"- **tiny-dnn** (time only): its BatchNorm has no γ/β and its Dropout keeps each unit with "
              f"probability `rate` (not 1 − rate) while scaling by 1/(1 − rate), so its accuracy is not comparable. Built with CNN_USE_AVX; one thread with CNN_SINGLE_THREAD, two with its "
              f"own std::async pool (its OpenMP mode opens a parallel region per weight in Adam and is ~100× slower). "
              f"It is slow, so A runs {args.tinydnn_a_steps} steps and B trains on the first "
              f"{args.tinydnn_b_steps} batches ({args.tinydnn_b_steps * B_BATCH} images, scaled to 60,000) and predicts "
              f"as many test images; its train() does not shuffle.",
              *(["- **Products one at a time** (`bench/products.cpp`): operands uniform in [−1, 1), row-major, "
                 "the transposed operands (xᵀ, Wᵀ, colsᵀ, Kᵀ) taken as views of stored matrices, as the layers "
                 "take them; the bias where the layer adds one (its m·n additions not counted). "
                 + ("Smoke run: one call of each product, timed. " if product_runs[0]["min_rep_s"] <= 0 else
                    f"Each product is run until a block of calls lasts {1000 * product_runs[0]['min_rep_s']:.0f} ms "
                    f"(the warm-up), then {product_runs[0]['repetitions']} blocks of minidl's and of Eigen's "
                    "alternate and the fastest block counts (a best case, like the peak); the table gives the "
                    "median of that over the runs. ")
                 + "Before any timing, minidl's result is checked against Eigen's (each element within "
                 "8·√k·ε·Σ|a||b|), or the run fails. A's Dense 1000 → 1 (32 × 1 × 1000) is left out: gemm leaves "
                 "products that small to Eigen."] if products else []),
              "- B's epoch time includes shuffling and gathering each batch (as in fit); predict runs over the 10,000 "
              "test images in batches of 128. Accuracy runs use 1 thread (reproducible) and the seeds in the programs.",
              ]
    if runner.waited_s:
        lines.append(f"- The suite waited {runner.waited_s:.0f} s in all for other processes to finish.")
    disturbed = [r for r in runner.runs if r["interference"] > 0.15]
    if disturbed:
        load = statistics.median(r["interference"] for r in disturbed)
        lines.append(f"- **† figures**: {len(disturbed)} of {len(runner.runs)} runs shared the machine with other "
                     f"processes (median {load:.1f} CPU of other load during those runs). A 1-thread run then loses "
                     "little; a 2-thread run on a 2-core machine competes for a core, and the threads' barrier waits "
                     "in every parallel product turn that into slowdowns of 5–50×: such 2-thread figures measure the "
                     "contention, not the code. Run the suite on an otherwise idle machine for them.")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
