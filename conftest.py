"""Settings for every test directory (tests/, plugins/, runners/).

Hypothesis checks properties here, not speed: its per-example deadline (200 ms) is turned off
for the whole suite. Under pytest-xdist's parallel workers an example that usually takes
0.4 ms was once stalled past a second by the other worker, and failed as "flaky". Speed
belongs in benchmarks/.
"""

from hypothesis import settings

settings.register_profile("tinysnn", deadline=None)
settings.load_profile("tinysnn")
