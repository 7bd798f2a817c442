"""Garbage-collector settings for the long-lived server processes: gunicorn's workers
(``qcos.wsgi``) and Celery's worker processes (``qcos.celery``).

A worker process imports Django, DRF, qiskit and qiskit-aer once and keeps those ~150,000
objects for its whole life, yet CPython's collector walks all of them again in every full
collection: tens of milliseconds each on this 2-core host, a pause for whichever request or job
is running. So, once the code a process will run is imported, ``gc.freeze()`` moves every object
alive then into a permanent generation that collections skip. Done before Celery forks its pool,
it also keeps those pages shared between the main process and its children instead of being
copied when the collector touches them.

Measured in one process (400 jobs: submit through Django's test client, then ``job_execute``
on PostgreSQL): time in the collector 202-226 ms without this and 113-126 ms with it; the longest
pause 82-96 ms against 33-40 ms. The pipeline's median overhead (perf/pipeline.py, three
interleaved pairs) was 20.2, 18.7 and 16.5 ms with it against 23.3, 20.0 and 16.6 ms without:
no worse, within the host's noise. Raising the youngest generation's threshold as well
(700 → 7,000) took the collector's time down to 72-88 ms but the median 0.2-1.1 ms up in four
pairs, so the thresholds are left alone.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterable


def tune_gc(*, preload: Iterable[str] = ()) -> None:
    """Import ``preload`` (the modules the process will run), collect what is garbage now, then
    freeze everything left."""
    for name in preload:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()
