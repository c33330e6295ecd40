"""Random numbers a study may use: the `random` module's functions draw from a generator
reseeded before each group with the seed the host hands for it (derived from a secret
and the group's patient). A patient handed again, among other neighbours (the host's
patient-locality check), draws the same numbers, so a study that samples or shuffles
stays a function of one patient.

An unseeded `random.Random()`, `os.urandom` and `secrets` draw from the sandbox's
run-wide source instead: their numbers depend on what ran before, and the host refuses
such a run as not patient-local.
"""

import random as _random
from bisect import bisect_right


class GroupRandom(_random.Random):
    """A `random.Random` that reseeds itself with the seed of the group being classified
    before its first draw for that group. Between draws it costs nothing: a study that
    draws nothing pays nothing."""

    def __init__(self):
        self._batch = None
        super().__init__(0)

    def enter_batch(self, out, groups, seeds):
        """The batch being classified: `out.start` is the first row of the current group,
        group `g` starts at `groups[g]` and has seed `seeds[g]`."""
        self._batch = (out, groups, seeds)
        self._group_start = None

    def _follow(self):
        out, groups, seeds = self._batch
        start = out.start
        if start != self._group_start:
            self._group_start = start
            # Reseeding also drops a normal deviate cached by `gauss`.
            super().seed(seeds[bisect_right(groups, start) - 1])

    def seed(self, a=None, version=2):
        # An explicit seed holds until the next group.
        if self._batch is not None:
            self._follow()
        super().seed(a, version)

    def random(self):
        if self._batch is not None:
            self._follow()
        return super().random()

    def getrandbits(self, k):
        if self._batch is not None:
            self._follow()
        return super().getrandbits(k)

    def gauss(self, mu=0.0, sigma=1.0):
        if self._batch is not None:
            self._follow()
        return super().gauss(mu, sigma)

    def getstate(self):
        if self._batch is not None:
            self._follow()
        return super().getstate()

    def setstate(self, state):
        if self._batch is not None:
            self._follow()
        super().setstate(state)


def install() -> GroupRandom:
    """Puts a `GroupRandom` behind the module-level functions of `random` (`random.random`,
    `random.choice`, `random.shuffle`, …): they are bound methods of `random._inst`, so
    each is rebound to the new generator. Idempotent."""
    current = _random._inst
    if isinstance(current, GroupRandom):
        return current
    generator = GroupRandom()
    for name, value in list(vars(_random).items()):
        if getattr(value, "__self__", None) is current:
            setattr(_random, name, getattr(generator, value.__name__))
    _random._inst = generator
    return generator


GENERATOR = install()
