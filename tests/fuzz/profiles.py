"""How much the fuzz suite does per run: three profiles, chosen by the environment.

- default: the whole of tests/fuzz in about a minute on two cores (the README's test command).
- PYCONC_FUZZ=long: ten times the examples and longer operation sequences, for a soak run.
- PYCONC_UNDER_ASAN=1 (set by .ci/sanitize): a short run, the sanitizer build being ~5x slower
  (PYCONC_FUZZ=long still asks for the soak run: a long soak under the sanitizers).

Each test states its size for the default profile (examples, steps per example); the profile
scales it. Settings are passed to each test explicitly, never loaded as hypothesis's global
profile, so that the rest of the test suite keeps its own settings. Failing examples print a
@reproduce_failure blob as well as the falsifying example; no example database is written.
"""
import os

from hypothesis import HealthCheck, settings

if os.environ.get("PYCONC_FUZZ") == "long":
    PROFILE = "long"
elif os.environ.get("PYCONC_UNDER_ASAN"):
    PROFILE = "asan"
else:
    PROFILE = "default"

_SCALE = {"default": 1.0, "long": 10.0, "asan": 0.2}[PROFILE]
_STEP_SCALE = {"default": 1.0, "long": 3.0, "asan": 0.5}[PROFILE]


def examples(n):
    """n examples in the default profile, scaled for the running profile (at least 2)."""
    return max(2, int(n * _SCALE))


def steps(n):
    """n operations per example in the default profile, scaled (at least 5)."""
    return max(5, int(n * _STEP_SCALE))


def fuzz_settings(n_examples, n_steps=None, **kwargs):
    """hypothesis settings for a fuzz test: n_examples (and n_steps for a state machine) at the
    default profile's size, no deadline (threads and processes make timings vary), no database."""
    extra = {}
    if n_steps is not None:
        extra["stateful_step_count"] = steps(n_steps)
    return settings(max_examples=examples(n_examples), deadline=None, database=None,
                    print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much],
                    **extra, **kwargs)


# How long a thread or process of a fuzz example may take before it counts as hung.
HANG_S = 20.0 if PROFILE != "asan" else 60.0
