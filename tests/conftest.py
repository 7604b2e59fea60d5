"""Suite-wide test settings.

Hypothesis's per-example deadline is a timed assertion: on a loaded 2-core
machine a correct example can exceed 200 ms and fail the suite. Speed is
measured by the benchmark scripts, never by tests, so the deadline is off for
every property test; each test still sets its own ``max_examples``.
"""

from hypothesis import settings

settings.register_profile("suite", deadline=None)
settings.load_profile("suite")
