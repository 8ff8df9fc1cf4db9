"""Backends: where the per-case task (:func:`~topobench.evaluate.case.evaluate_pair`) runs.

- :func:`serial`: in this process, one case after another;
- :func:`process_pool`: a pool of worker processes (forks, or a forkserver) with a bounded number
  of cases in flight; the workers end with this process, even when it is killed;
- :func:`map_in_pool`: the same pool for another per-case function, results in task order (the
  label-map runner);
- :func:`dask`: a Dask cluster (an address, or ``"local"``).

Each yields a :class:`~topobench.evaluate.case.CaseResult` per task as the cases finish (in any
order) and never raises for a bad case.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from topobench.errors import TopobenchError
from topobench.evaluate.case import CaseResult, CaseTask, _reason, evaluate_pair, import_readers

__all__ = ["available_cores", "dask", "map_in_pool", "process_pool", "serial", "start_method"]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def serial(tasks: Iterator[CaseTask]) -> Iterator[CaseResult]:
    for task in tasks:
        yield evaluate_pair(task)


def _exit_with_parent(death: Any, inherited: Any = None) -> None:
    """Pool worker initializer: end this worker as soon as the main process ends.

    ``death`` is the read end of a pipe whose only write end the main process holds; the
    kernel closes it when that process dies (even by SIGKILL), the read end then reports
    end-of-file and the watcher thread ends the worker. (Without it, workers blocked on their
    task queue, and the forkserver whose pipe they hold, outlive a killed run.) A forked worker
    inherits the write end too: ``inherited`` is that copy, closed here so that only the main
    process holds one.
    """
    import threading

    if inherited is not None:
        inherited.close()

    def watch() -> None:
        try:
            death.poll(None)
        except (OSError, EOFError, ValueError):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="topobench-parent-watch", daemon=True).start()


def start_method() -> str:
    """How pool workers start: ``"fork"`` on Linux when this process runs a single thread, else
    ``"forkserver"``.

    A forked worker is a copy of this process with everything imported: it starts in
    milliseconds, where a forkserver first imports numpy, scipy, scikit-image and the metrics
    (about 0.5 s of CPU, as much as ten 1500 x 1500 cases). Forking is unsafe beside other
    threads (a lock one of them holds stays locked in the child), so a process with more than
    one thread, e.g. one showing a progress display, gets a forkserver, whose workers start as
    forks of a clean process that imported the engine once (spawn where there is no
    forkserver: Windows).
    """
    import multiprocessing
    import sys
    import threading

    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return "fork"  # not on macOS, where system libraries may not survive a fork
    if "forkserver" in multiprocessing.get_all_start_methods():
        return "forkserver"
    return "spawn"  # Windows


class _Pool:
    """A process pool that ends with this process; restarted when a worker dies."""

    def __init__(self, workers: int):
        import multiprocessing

        self.workers = workers
        self._death_r, self._death_w = multiprocessing.Pipe(duplex=False)
        self._executor = self._start()

    def _start(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        method = start_method()
        context = multiprocessing.get_context(method)
        if method == "forkserver":  # the server imports the engine once, workers fork from it
            context.set_forkserver_preload(["topobench.evaluate"])
        inherited = self._death_w if method == "fork" else None
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_exit_with_parent,
            initargs=(self._death_r, inherited),
        )

    def submit(self, task: CaseTask, fn: Any = evaluate_pair) -> Any:
        return self._executor.submit(fn, task)

    def restart(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._start()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._death_w.close()
        self._death_r.close()


class _PoolResults:
    """The results of a :class:`_Pool`, with at most ``2 * workers`` cases in flight.

    The first cases are submitted (and the workers started) when it is made, not when it is
    first iterated, so that a caller can start the pool before it starts threads of its own
    (a progress display): the workers are then forks of a single-threaded process.
    :meth:`close` shuts the pool down, whether or not it was iterated.
    """

    def __init__(self, tasks: Iterator[CaseTask], workers: int):
        first = next(tasks, None)
        if first is not None and start_method() == "fork":
            import_readers(first)  # imported once here, not in each forked worker
        self._tasks = itertools.chain([first] if first is not None else [], tasks)
        self._ahead = 2 * workers
        self._pending: dict[Any, CaseTask] = {}
        self._pool = _Pool(workers)
        self._closed = False
        try:
            self._fill()
        except BaseException:
            self.close()
            raise
        self._results = self._run()

    def _fill(self) -> None:
        while len(self._pending) < self._ahead:
            task = next(self._tasks, None)
            if task is None:
                return
            self._pending[self._pool.submit(task)] = task

    def _run(self) -> Iterator[CaseResult]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        lost = "worker process died (out of memory?)"
        while self._pending:
            done, _ = wait(self._pending, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                task = self._pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    broken = True
                    yield CaseResult(task.pair.case, error=lost)
            if broken:  # every case in flight is lost with the pool: report them, start afresh
                for task in self._pending.values():
                    yield CaseResult(task.pair.case, error=lost)
                self._pending.clear()
                self._pool.restart()
            self._fill()

    def __iter__(self) -> Iterator[CaseResult]:
        return self

    def __next__(self) -> CaseResult:
        return next(self._results)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._results_close()
            self._pool.close()

    def _results_close(self) -> None:
        results = getattr(self, "_results", None)
        if results is not None:
            results.close()


def process_pool(tasks: Iterator[CaseTask], workers: int) -> Iterator[CaseResult]:
    """Evaluate in ``workers`` processes with at most ``2 * workers`` cases in flight.

    The workers start (:func:`start_method`) and the first cases are submitted before this
    returns; the iterator's ``close()`` shuts the pool down (call it however the loop ends).
    """
    return _PoolResults(tasks, workers)


def map_in_pool(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int) -> Iterator[Any]:
    """``map(fn, tasks)`` in this engine's process pool (workers end with this process), in the
    order of ``tasks``, with at most ``2 * workers`` tasks in flight.

    For per-case tasks other than :func:`~topobench.evaluate.case.evaluate_pair` (the label-map
    runner's); ``fn`` must be importable by the workers. A worker that dies raises
    ``BrokenProcessPool``, as :meth:`concurrent.futures.Executor.map` does.
    """
    pool = _Pool(max(1, min(workers, len(tasks))))
    try:
        pending: deque[Any] = deque()
        remaining = iter(tasks)
        for task in itertools.islice(remaining, 2 * pool.workers):
            pending.append(pool.submit(task, fn))
        while pending:
            result = pending.popleft().result()
            task = next(remaining, None)
            if task is not None:
                pending.append(pool.submit(task, fn))
            yield result
    finally:
        pool.close()


def dask(
    tasks: Iterator[CaseTask], address: str, workers: int, timeout: float
) -> Iterator[CaseResult]:
    """Evaluate on a Dask cluster (``"local"``: start a LocalCluster of ``workers`` processes)."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise TopobenchError(
            "running on Dask needs the optional dependency: pip install 'topobench[dask]'"
        ) from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout=timeout)
        except Exception as exc:  # OSError, TimeoutError, ValueError for a bad address...
            raise TopobenchError(
                f"cannot connect to the Dask scheduler at {address}: {exc}"
            ) from exc
    try:
        ahead = 2 * max(sum(client.nthreads().values()), 1)
        futures = as_completed()
        cases: dict[str, str] = {}

        def submit() -> bool:
            task = next(tasks, None)
            if task is None:
                return False
            future = client.submit(evaluate_pair, task, pure=False)
            cases[future.key] = task.pair.case
            futures.add(future)
            return True

        for _ in range(ahead):
            if not submit():
                break
        for future in futures:
            case = cases.pop(future.key)
            try:
                yield future.result()
            except Exception as exc:  # a worker lost, or a task cancelled
                yield CaseResult(case, error=f"Dask task failed: {_reason(exc)}")
            future.release()
            submit()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
