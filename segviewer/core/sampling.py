"""Spot-check samples: a seeded, reproducible choice of images to review instead of all of them.

Random: `size` images drawn with `random.Random(seed)`. Stratified: first, for every class present
in the set (by id), images that contain it until at least `min_per_class` of the chosen ones do (or
all that contain it, when fewer do); then random images up to `size`. The same images, seed and
settings always give the same sample, in the images' own order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class SampleError(ValueError):
    """A sample that cannot be drawn; one line for the user."""


@dataclass(frozen=True)
class SampleSpec:
    size: int
    seed: int
    min_per_class: int = 0  # 0: plain random sample
    classes_from: str = ""  # what class presence was read from, e.g. "ground truth"


@dataclass
class Sample:
    spec: SampleSpec
    population: int
    chosen: list[Path]
    per_class: dict[int, int] = field(default_factory=dict)  # chosen images containing each class

    def describe(self) -> str:
        text = f"{len(self.chosen)} of {self.population} images, seed {self.spec.seed}"
        if self.spec.min_per_class:
            text += (f", at least {self.spec.min_per_class} per class present (stratified by "
                     f"{self.spec.classes_from or 'class presence'})")
        else:
            text += ", random"
        return text


def draw_sample(images: Sequence[Path], spec: SampleSpec,
                classes_of: Callable[[Path], set[int]] | None = None) -> Sample:
    """The sample of `images` that `spec` describes. `classes_of(image)` gives the classes
    present in an image; it is needed (and called once per image) for a stratified sample."""
    if spec.size < 1:
        raise SampleError(f"a sample needs at least 1 image, got {spec.size}")
    images = [Path(p) for p in images]
    rng = random.Random(spec.seed)
    order = list(range(len(images)))
    rng.shuffle(order)
    chosen: list[int] = []
    taken: set[int] = set()
    per_class: dict[int, int] = {}
    if spec.min_per_class:
        if classes_of is None:
            raise SampleError("a sample with a minimum per class needs to know the classes in "
                              "each image — give ground truth or a prediction folder")
        present = [classes_of(images[i]) for i in range(len(images))]
        for cls in sorted(set().union(*present)):
            have = sum(1 for i in chosen if cls in present[i])
            for i in order:
                if have >= spec.min_per_class:
                    break
                if i not in taken and cls in present[i]:
                    chosen.append(i)
                    taken.add(i)
                    have += 1
        if len(chosen) > spec.size:
            raise SampleError(f"at least {spec.min_per_class} images per class needs "
                              f"{len(chosen)} images, more than the sample of {spec.size} — "
                              "sample more images or ask for fewer per class")
    for i in order:
        if len(chosen) >= min(spec.size, len(images)):
            break
        if i not in taken:
            chosen.append(i)
            taken.add(i)
    chosen.sort()
    if spec.min_per_class:
        for i in chosen:
            for cls in present[i]:
                per_class[cls] = per_class.get(cls, 0) + 1
        per_class = dict(sorted(per_class.items()))
    return Sample(spec, len(images), [images[i] for i in chosen], per_class)
