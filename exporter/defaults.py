"""The exporter's defaults and option rules, shared by segviewer-export and the GUI's export dialog.

Plain Python (no TensorFlow): the dialog reads them when it opens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

CROP_SIZE = (513, 513)  # research export_model.py
OUTPUT_STRIDES = (8, 16, 32)
INFERENCE_SCALES = (1.0,)
# Research defaults for three ASPP branches (common.py / the model zoo: atrous_rates 6,12,18), for
# output stride 16.
DEFAULT_ATROUS_RATES = (6, 12, 18)
DEFAULT_DECODER_OUTPUT_STRIDE = 4
_RATES_STRIDE = 16
# The oldest TensorFlow release, and so TF Serving release, that loads and runs every signature,
# found by loading exports with each release's own wheel (README: "Which TF Serving loads our
# exports"): TensorFlow >= 2.10 writes DisableCopyOnRead into the variables' save function.
MIN_TF_SERVING = "2.10"
# --compat-older-servers: no weight variables, so no such op; 2.4 and older lack the `debug_name`
# attribute that the asset's VarHandleOp carries.
MIN_TF_SERVING_COMPAT = "2.5"


def default_output_stride(atrous_rates: Sequence[int] | None) -> int:
    """16 with atrous ASPP rates (the published ones are for 16), else 8 (mobilenet_v2 zoo)."""
    return 16 if atrous_rates else 8


def rates_at(atrous_rates: Sequence[int], output_stride: int) -> tuple[int, ...]:
    """The published rates scaled to `output_stride` (doubled at 8, as the research code does)."""
    return tuple(r * _RATES_STRIDE // output_stride for r in atrous_rates)


def parse_numbers(
    text: str, kind: Callable[[str], float], what: str, example: str | None = None
) -> tuple:
    """'6,12,18' -> (6, 12, 18); '' or 'none' -> (). ValueError naming `what` and an example."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        return tuple(kind(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        example = example or ("6,12,18" if kind is int else "0.75,1.0,1.25")
        named = f"{what} '{text}'" if what else f"'{text}'"
        raise ValueError(f"{named} must be comma-separated numbers, e.g. {example}") from None
