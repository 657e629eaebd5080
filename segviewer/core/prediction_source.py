"""A compare source made of label PNGs that `segviewer-predict` wrote earlier (say on a server
farm), so a review of thousands of images needs no model at review time.

Each label PNG carries its provenance (`core.provenance`: model, version, signature, source,
fingerprint). A folder is one model version: all its label PNGs must name the same model,
version, signature and fingerprint, else the folder is refused naming the odd ones, and a PNG
changed since is refused when read (a stray PNG from another run is never scored as this
model's). Label PNGs are matched to images by file stem; `<stem>_overlay.png` files are skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segviewer.core.fingerprint import Fingerprint, FingerprintError
from segviewer.core.images import ImageLoadError, load_label_png
from segviewer.core.provenance import KEY as PROVENANCE_KEY
from segviewer.core.provenance import Provenance
from segviewer.core.provenance import read as read_provenance

OVERLAY_SUFFIX = "_overlay"


class PredictionFolderError(ValueError):
    """A folder that cannot be a compare source; one line for the user."""


def _same(made: Provenance | None, model: Provenance) -> bool:
    """The same model version, by content too (the source may differ: replicas)."""
    return model.same_model(made) and made is not None and made.fingerprint == model.fingerprint


class PredictionFolder:
    """Label PNGs by stem, and the model version that made them."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise PredictionFolderError(f"prediction folder '{folder}' does not exist — pass the "
                                        "--out folder of a segviewer-predict run")
        self._by_stem: dict[str, Path] = {}
        for path in sorted(self.folder.glob("*.png")):
            if not path.stem.endswith(OVERLAY_SUFFIX) and not path.name.startswith("."):
                self._by_stem[path.stem] = path
        if not self._by_stem:
            raise PredictionFolderError(f"'{folder}' holds no label PNGs — pass the --out folder "
                                        "of a segviewer-predict run")
        self.provenance = self._one_model()
        try:
            self.fingerprint = Fingerprint.parse(self.provenance.fingerprint or "")
        except FingerprintError:
            raise PredictionFolderError(
                f"the PNGs in '{self.folder}' do not record their model's fingerprint — write "
                "the predictions again with this segviewer-predict") from None
        self.description = f"predictions {self.folder.resolve()}"

    def _one_model(self) -> Provenance:
        """The provenance every PNG records (reading only their headers)."""
        groups: dict[tuple, list[Path]] = {}
        found: dict[tuple, Provenance] = {}
        for path in self._by_stem.values():
            prov = read_provenance(path)
            if prov is None:
                raise PredictionFolderError(
                    f"'{path}' does not say which model made it (no readable "
                    f"'{PROVENANCE_KEY}' PNG text chunk) — write the predictions again with "
                    "this segviewer-predict")
            key = (prov.model, prov.version, prov.signature, prov.fingerprint)
            groups.setdefault(key, []).append(path)
            found.setdefault(key, prov)
        if len(groups) > 1:
            ranked = sorted(groups, key=lambda k: -len(groups[k]))
            odd = [p.name for k in ranked[1:] for p in groups[k]]
            main = found[ranked[0]]
            raise PredictionFolderError(
                f"'{self.folder}' mixes models: {len(odd)} PNGs ({', '.join(odd[:3])}"
                f"{', …' if len(odd) > 3 else ''}) are not from {main.model} v{main.version} "
                "like the rest — keep one model version's predictions per folder")
        return found[next(iter(groups))]

    def __len__(self) -> int:
        return len(self._by_stem)

    def path_for(self, image: Path) -> Path | None:
        return self._by_stem.get(Path(image).stem)

    def labels(self, image: Path) -> np.ndarray:
        """The label map for `image`; ImageLoadError when it is missing or from another model."""
        path = self.path_for(image)
        if path is None:
            raise ImageLoadError(f"no prediction for '{Path(image).name}' in {self.folder} "
                                 f"(expected {Path(image).stem}.png)")
        prov = read_provenance(path)
        if not _same(prov, self.provenance):
            made = f"{prov.model} v{prov.version}" if prov else "an unknown model"
            raise ImageLoadError(f"'{path}' was made by {made}, not {self.provenance.model} "
                                 f"v{self.provenance.version} like the rest of {self.folder} — "
                                 "remove it or predict it again")
        return load_label_png(path)
