"""OpenBLAS's thread count is process-wide: concurrent spectra calls must restore it."""
import ctypes
import threading

import numpy as np
import relusv


def test_concurrent_relu_spectra_leave_the_blas_thread_count_as_it_was():
    openblas = ctypes.CDLL("libopenblas.so.0")  # the instance libReluSVKit is linked against
    openblas.openblas_set_num_threads(2)
    rng = np.random.default_rng(3)
    w, x = rng.normal(size=(12, 10)), rng.normal(size=(200, 10))
    errors = []

    def work():
        try:
            for _ in range(3):
                relusv.relu_singular_values(w, X=x, max_steps=40, progress=False)
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert openblas.openblas_get_num_threads() == 2
