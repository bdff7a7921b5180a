#!/usr/bin/env python3
"""Benchmark ferrolite against LiteRT on the same models, in one run.

usage: bench/side_by_side.py [--models DIR] [--threads 1,2] [--runs 30] [--warmup 200] [--out BENCHMARKS.md]

Makes the benchmark models first if DIR lacks them (../shared/tools/make_models.py
DIR bench: MobileNet v1/v2 at 224, Inception v3 at 299; f32, int8, and for
MobileNet v2 also dyn and f16). For every model and thread count it
alternates LiteRT (default XNNPACK path) and `ferrolite bench --json`,
each in a fresh process (start-up included), several rounds, and keeps the median of each side's medians, so both see the
same machine state. Writes a Markdown table with the ratio ferrolite/LiteRT.
"""
import argparse, json, os, platform, statistics, subprocess, sys, time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def litert_child(path, threads, runs, warmup):
    """One LiteRT measurement, run in a fresh process (see `litert_bench`)."""
    from ai_edge_litert import interpreter as lite
    t0 = time.perf_counter()
    it = lite.Interpreter(model_path=path, num_threads=threads)
    it.allocate_tensors()
    load_alloc = (time.perf_counter() - t0) * 1e3
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        if d["dtype"] == np.float32:
            x = rng.uniform(-1, 1, d["shape"]).astype(np.float32)
        else:
            info = np.iinfo(d["dtype"])
            x = rng.integers(info.min, info.max + 1, d["shape"]).astype(d["dtype"])
        it.set_tensor(d["index"], x)
    for _ in range(warmup):
        it.invoke()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        it.invoke()
        times.append((time.perf_counter() - t) * 1e3)
    print(json.dumps({"median_ms": statistics.median(times), "load_alloc_ms": load_alloc}))


def litert_bench(path, threads, runs, warmup):
    # A fresh process per measurement, as `ferrolite bench` gets: in this
    # long-lived process LiteRT's allocator reuses pages the previous
    # rounds already faulted in, and its load+allocate read 8-10 ms for
    # MobileNet v1 f32 instead of the 25-33 ms a new process takes.
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--litert-child", path, str(threads), str(runs), str(warmup)],
        check=True, capture_output=True, text=True,
    ).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return r["median_ms"], r["load_alloc_ms"]


def ferrolite_bench(binary, path, threads, runs, warmup, extra=()):
    out = subprocess.run(
        [binary, "bench", path, "--threads", str(threads), "--runs", str(runs), "--warmup", str(warmup), "--json",
         *extra],
        check=True, capture_output=True, text=True,
    ).stdout
    r = json.loads(out)
    return r["median_ms"], r["load_ms"] + r["allocate_ms"]


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.path.join(ROOT, "target", "bench-models"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=30)
    # Warm-up long enough to pass the first ~250 ms of a fresh process:
    # on the VMs we measure on, a second thread runs at a fraction of its
    # speed for that long, and with 5 warm-up runs LiteRT's 2-thread
    # MobileNet v2 int8 read 1.90 ms instead of 0.75.
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    ap.add_argument("--only", default="", help="comma-separated substrings of model names to keep")
    args = ap.parse_args()

    os.makedirs(args.models, exist_ok=True)
    if not any(f.endswith(".tflite") for f in os.listdir(args.models)):
        tool = os.path.join(ROOT, "..", "shared", "tools", "make_models.py")
        print(f"making benchmark models with {tool} ...", flush=True)
        subprocess.run([sys.executable, tool, args.models, "bench"], check=True)

    binary = os.path.join(ROOT, "target", "release", "ferrolite")
    subprocess.run(["cargo", "build", "--release", "-p", "ferrolite-cli"], cwd=ROOT, check=True)

    models = sorted(f for f in os.listdir(args.models) if f.endswith(".tflite"))
    if args.only:
        keep = args.only.split(",")
        models = [m for m in models if any(k in m for k in keep)]
    rows = []
    for m in models:
        path = os.path.join(args.models, m)
        for threads in [int(t) for t in args.threads.split(",")]:
            ours, theirs, ours_la, theirs_la, fast_la, paired = [], [], [], [], [], []
            for r in range(args.rounds):
                def run_litert():
                    t, la = litert_bench(path, threads, args.runs, args.warmup)
                    theirs.append(t)
                    theirs_la.append(la)

                def run_ours():
                    try:
                        f, fla = ferrolite_bench(binary, path, threads, args.runs, args.warmup)
                    except subprocess.CalledProcessError as e:
                        print(f"{m}: ferrolite failed: {e.stderr.strip()[:200]}", flush=True)
                        f, fla = float("nan"), float("nan")
                    ours.append(f)
                    ours_la.append(fla)

                # Who goes first alternates, so neither always runs right
                # after the other (this VM drifts between fast and slow
                # states over seconds).
                for run in (run_litert, run_ours) if r % 2 == 0 else (run_ours, run_litert):
                    run()
                paired.append(ours[-1] / theirs[-1])
                # Start-up with weights read in place (no packing).
                try:
                    fast_la.append(ferrolite_bench(binary, path, threads, 1, 0, ["--no-weight-packing"])[1])
                except subprocess.CalledProcessError:
                    fast_la.append(float("nan"))
            row = (m[:-7], threads, statistics.median(theirs), statistics.median(ours),
                   statistics.median(theirs_la), statistics.median(ours_la), statistics.median(fast_la),
                   statistics.median(paired))
            rows.append(row)
            print(f"{row[0]:32} t={threads} litert {row[2]:8.2f} ms  ferrolite {row[3]:8.2f} ms  ratio {row[3]/row[2]:5.2f}"
                  f"  paired {row[7]:5.2f}", flush=True)

    with open(args.out, "w") as f:
        f.write("# Benchmarks\n\n")
        f.write("Made by `bench/side_by_side.py` (LiteRT with its default XNNPACK path vs `ferrolite bench`, each in a fresh process, ")
        f.write(f"alternating (who goes first alternates by round), {args.rounds} rounds of {args.runs} runs after {args.warmup} warm-up runs; "
                "each time is the median of the rounds' medians, the paired ratio the median of the rounds' own ratios).\n\n")
        f.write(f"- machine: {cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}\n")
        f.write(f"- date: {time.strftime('%Y-%m-%d')}\n")
        f.write(f"- command: `python3 bench/side_by_side.py --threads {args.threads} --runs {args.runs} "
                f"--warmup {args.warmup} --rounds {args.rounds}`\n\n")
        f.write("| model | threads | LiteRT median ms | ferrolite median ms | ratio ferrolite/LiteRT | paired ratio | LiteRT load+allocate ms | ferrolite load+allocate ms | ferrolite --no-weight-packing load+allocate ms |\n")
        f.write("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
        for name, t, lt, fe, lla, fla, fast, pr in rows:
            f.write(f"| {name} | {t} | {lt:.2f} | {fe:.2f} | {fe/lt:.2f} | {pr:.2f} | {lla:.1f} | {fla:.1f} | {fast:.1f} |\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--litert-child":
        litert_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
