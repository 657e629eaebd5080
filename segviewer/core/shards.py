"""`--shard K/N`: a deterministic 1/N of the inputs, the same on any machine and any run.

An input belongs to shard `hash(rel) mod N`, where `rel` is its path relative to the argument it
came from (the path its outputs mirror) and the hash is BLAKE2b, not Python's per-process `hash`.
So N runs with K = 0..N-1 (a Kubernetes Indexed Job, a Slurm array) cover every input exactly once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


class ShardError(ValueError):
    """A --shard value that is not K/N with 0 <= K < N."""


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        k, sep, n = text.partition("/")
        try:
            index, count = int(k), int(n)
        except ValueError:
            index = count = -1
        if not sep or count < 1 or not 0 <= index < count:
            raise ShardError(f"expected K/N with 0 <= K < N (e.g. 0/4), got '{text}'")
        return cls(index, count)

    def holds(self, rel: str) -> bool:
        """Whether the input at posix path `rel` (relative to its argument) is in this shard."""
        digest = hashlib.blake2b(rel.encode("utf-8", "surrogateescape"),
                                 digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
