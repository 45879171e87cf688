"""Flag runs whose scores were computed differently from the other runs on the same data,
or by a feature network that does not fit the data (the digit network on fashion_mnist).

FID from another feature network, or from another number of generated samples, is not
comparable (FID is biased in the sample count), so such runs are marked instead of being
silently ranked together with the others. Runs on different data sets are never
compared: their scores are not comparable anyway, and a 2D run scores other sample
counts than an image run by design.
"""

from __future__ import annotations

import pandas as pd

from gansweep.rundir import Status
from gansweep.scores import OFF_DOMAIN

# Provenance column -> its name in flags ("feature net differs").
PROVENANCE_CHECKS = {
    "feature_net_sha256": "feature net",
    "n_fake": "n_fake",
}
# A run stopped before its budget (pruned, collapsed, ...) keeps the scores of its last
# evaluation, an interim one, which scores eval.interim_samples by design; so sample
# counts are compared among the runs scored at the end of their budget only.
FINAL_ONLY = {"n_fake"}
FLAGS_COLUMN = "flags"
OFF_DOMAIN_FLAG = "digit-network scores"


def flag_mixed_scoring(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Return ``runs`` with a ``flags`` column and one warning line per mixed provenance key and data set.

    Among the runs on one data set, the most common value of each key is the reference;
    runs with another value get "<words> differs" in ``flags``. Runs without the key (not
    scored yet) are left alone.
    """
    flags = pd.Series("", index=runs.index, dtype=object)
    warnings: list[str] = []
    if "feature_domain" in runs:
        # Not comparable with published numbers, whatever the other runs did.
        off = runs.index[runs["feature_domain"] == OFF_DOMAIN]
        flags[off] = OFF_DOMAIN_FLAG
        if len(off):
            warnings.append(
                f"{_runs(len(off))} scored with the digit network on non-digit images: marked '{OFF_DOMAIN_FLAG}'; "
                "their FID is not comparable with published ones (use data.feature_net=inception where its weights exist)"
            )
    for data, group in runs.groupby("data", sort=True):
        for column, words in PROVENANCE_CHECKS.items():
            if column not in group:
                continue
            compared = group
            if column in FINAL_ONLY and "status" in group:
                compared = group[group["status"] == Status.completed.value]
            values = compared[column].dropna().map(_label)
            counts = values.value_counts()
            if len(counts) < 2:
                continue
            reference = counts.index[0]
            minority = values.index[values != reference]
            flags[minority] = flags[minority].map(lambda f: f"{f}; {words} differs" if f else f"{words} differs")
            groups = ", ".join(f"{v}: {_runs(n)}" for v, n in counts.items())
            warnings.append(
                f"runs on {data} were scored with {len(counts)} different values of {column} ({groups}); "
                f"scores are not comparable across them: {_runs(len(minority))} marked '{words} differs' in '{FLAGS_COLUMN}'"
            )
    return runs.assign(**{FLAGS_COLUMN: flags}), warnings


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _label(value: object) -> str:
    """How a value is shown: sha256 cut to 12 hex digits, 5000.0 as 5000."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text[:12] if len(text) == 64 else text
