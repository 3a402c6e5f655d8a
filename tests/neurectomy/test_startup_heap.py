"""The start-up heap is frozen out of the garbage collector's reach (``freeze_startup_heap``)."""

from __future__ import annotations

import gc

from neurectomy.server.runtime import freeze_startup_heap


def test_objects_alive_at_start_up_leave_the_collections_and_later_ones_do_not() -> None:
    startup = [[i] for i in range(1000)]  # containers: tracked by the collector
    try:
        frozen = freeze_startup_heap()
        later = [[i] for i in range(10)]
        tracked = {id(o) for o in gc.get_objects()}
        # Not equal to the count now: frozen objects that other threads of the session release (worker
        # threads, NATS clients of earlier tests) leave the permanent generation as they are freed.
        assert frozen > len(startup) and gc.get_freeze_count() > len(startup)
        assert id(startup) not in tracked and not any(id(x) in tracked for x in startup)
        assert id(later) in tracked  # what comes after start-up is collected as usual
    finally:
        gc.unfreeze()  # the rest of the test session collects as before
    assert gc.get_freeze_count() == 0
