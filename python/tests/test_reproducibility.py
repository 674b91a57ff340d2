"""Reproducibility across thread counts (relusv.h, Conventions).

ReLU singular-value bounds, singular values and numerical ranks run wholly
with OpenBLAS at one thread: every bound (the exact k = 0 value included),
t_k, sigma_k and singular value is bit-identical with
OPENBLAS_NUM_THREADS=1 and 2, with the `threads` option 1 and 2, and when
several calls run concurrently. Widths use OpenBLAS's threads: per-direction
widths agree within the stated bound, ``2 n u ||g_j|| max_i ||x_i||``.
Each configuration runs in its own process (OpenBLAS reads its thread count at
start-up).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from conftest import relusv_directions

CHILD = textwrap.dedent("""
    import json, sys, threading
    import numpy as np
    import relusv

    threads = int(sys.argv[1])
    rng = np.random.default_rng(11)
    layers = [(rng.normal(size=(60, 50)), rng.normal(size=60), rng.normal(size=(400, 50))),
              (rng.normal(size=(40, 36)).astype(np.float32), None, rng.normal(size=(300, 36)).astype(np.float32))]

    def bounds(i):
        w, b, x = layers[i]
        r = relusv.relu_singular_values(w, b, X=x, max_steps=10, threads=threads, progress=False)
        return [v.hex() for v in np.concatenate([r.bound, r.truncation_bound, r.sigma]).tolist()]

    def sphere():
        w = layers[0][0]
        r = relusv.relu_singular_values(w, ks=[0, 7, 30], max_steps=0, sphere_points=300, threads=threads,
                                        progress=False)
        return [v.hex() for v in r.bound.tolist()]

    serial = [bounds(0), bounds(1), sphere()]
    concurrent = {}

    def work(i):
        concurrent[i] = bounds(i) if i < 2 else sphere()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    x = np.random.default_rng(3).normal(size=(3000, 200))
    widths = relusv.gmw(x, samples=300, seed=4, return_details=True).sample_widths
    big = [rng.normal(size=(300, 2000)), rng.normal(size=(256, 2304)).astype(np.float32)]
    spectra = [[float(v).hex() for v in relusv.singular_values(w)] + [relusv.numerical_rank(w)] for w in big]
    print(json.dumps({"serial": serial, "concurrent": [concurrent[i] for i in range(3)],
                      "widths": widths.tolist(), "spectra": spectra}))
""")


def run(openblas_threads: int, threads: int) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(openblas_threads))
    done = subprocess.run([sys.executable, "-c", CHILD, str(threads)], capture_output=True, text=True, env=env,
                          timeout=300, check=True)
    return json.loads(done.stdout)


def test_bounds_are_bit_identical_across_thread_counts_and_concurrency():
    one, two = run(1, 1), run(2, 2)
    reference = one["serial"]
    assert len(reference[0]) == 3 * 50 and len(reference[1]) == 3 * 36
    for name, result in [("OpenBLAS 2 threads, threads=2", two["serial"]),
                         ("concurrent, OpenBLAS 1 thread", one["concurrent"]),
                         ("concurrent, OpenBLAS 2 threads", two["concurrent"])]:
        for case, (expected, got) in enumerate(zip(reference, result)):
            differing = [i for i, (a, b) in enumerate(zip(expected, got)) if a != b]
            assert not differing, f"{name}, case {case}: {len(differing)} values differ, first at {differing[0]}"
    # Singular values and numerical ranks run at one OpenBLAS thread too.
    assert one["spectra"] == two["spectra"] and len(one["spectra"][0]) == 301
    # The stated bound of the widths: 2 n u ||g_j|| max_i ||x_i|| per direction.
    x = np.random.default_rng(3).normal(size=(3000, 200))
    g = relusv_directions(200, 300, 4)
    allowed = 2 * 200 * 2.0**-53 * np.linalg.norm(g, axis=1) * np.linalg.norm(x, axis=1).max()
    difference = np.abs(np.array(one["widths"]) - np.array(two["widths"]))
    assert np.all(difference <= allowed), (difference / allowed).max()
