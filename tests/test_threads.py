"""Work across cores: same results as one after another, BLAS held to one thread inside, errors surface."""
import threading

import numpy as np
import pytest
import torch

import analysis
import analysis.measures.threads
from analysis.measures.threads import MIN_ELEMENTS, parallel_map, pieces, worth_splitting


def blas_threads() -> set[int]:
    """Threads of the BLAS libraries `parallel_map` limits (numpy's among them: loaded before any call)."""
    return {lib["num_threads"] for lib in analysis.measures.threads._controller().info() if lib["user_api"] == "blas"}


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(analysis.measures.threads, "cores", lambda: 2)


def test_parallel_map_keeps_order_and_runs_in_threads(two_cores):
    seen = []

    def work(i):
        seen.append(threading.current_thread() is threading.main_thread())
        return i * i

    assert parallel_map(work, range(7)) == [i * i for i in range(7)]
    assert not any(seen)
    seen.clear()
    assert parallel_map(work, range(3), threads=False) == [0, 1, 4]
    assert all(seen)


def test_blas_is_single_threaded_inside_and_restored_after(two_cores):
    before = blas_threads()
    inside = parallel_map(lambda _: blas_threads(), range(2))
    assert inside == [{1}, {1}]
    assert blas_threads() == before
    assert parallel_map(lambda _: blas_threads(), range(2), single_blas=False) == [before, before]


def test_errors_propagate(two_cores):
    def fail(i):
        if i == 1:
            raise ValueError("piece 1 failed")
        return i

    with pytest.raises(ValueError, match="piece 1 failed"):
        parallel_map(fail, range(3))


@pytest.mark.parametrize("count, minimum", [(0, 1), (1, 1), (7, 1), (130, 8), (10, 8)])
def test_pieces_cover_the_range_in_order(two_cores, count, minimum):
    cut = pieces(count, minimum)
    covered = [i for s in cut for i in range(count)[s]]
    assert covered == list(range(count))
    assert len(cut) == max(1, min(2, count // minimum))


def test_only_large_numpy_work_is_split():
    big = np.zeros(MIN_ELEMENTS)
    assert worth_splitting(big, np.zeros(3))
    assert not worth_splitting(np.zeros(10), np.zeros(10))  # threads would cost more than they save
    assert not worth_splitting(big, torch.zeros(3))  # torch runs its own batches, on its own device


def test_measures_equal_their_single_core_values(monkeypatch):
    monkeypatch.setattr(analysis.measures.threads, "MIN_ELEMENTS", 0)  # split even these small layers
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 6, 6, 6))
    b = np.tanh(a[:, :5]) + 0.5 * rng.standard_normal((300, 5, 6, 6))
    x, y = a.reshape(300, -1)[:, :80], b.reshape(300, -1)[:, :60]
    results = {}
    for n_cores in (1, 2):
        monkeypatch.setattr(analysis.measures.threads, "cores", lambda n=n_cores: n)
        grid = analysis.similarity_grid({"x": x, "y": y}, measure="pwcca", progress=False)
        results[n_cores] = (analysis.dft_cca(a, b).rho, analysis.cca(x, y).rho, analysis.svcca(x, y, keep=20).rho,
                            np.asarray(grid))
    for one, two in zip(results[1], results[2]):
        np.testing.assert_allclose(two, one, rtol=0, atol=1e-12)


def test_callers_in_other_threads_run_their_pieces_themselves(two_cores):
    """Only the main thread may set BLAS's thread count (threadpoolctl): elsewhere, pieces run in the caller."""
    before, seen = blas_threads(), []

    def caller():
        me = threading.current_thread()
        seen.extend(parallel_map(lambda _: (threading.current_thread() is me, blas_threads()), range(3)))

    callers = [threading.Thread(target=caller) for _ in range(3)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert seen == [(True, before)] * 9
    assert blas_threads() == before
