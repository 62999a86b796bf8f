"""Which row of a base run is compared with which row of a new one (``srd compare``).

By ``case_id`` (the default), each pair's parameters (the ``param_*`` columns both files
have) must be the same point: ``srd design`` numbers its points by position, so adding a
level re-labels them, and the same id then names another configuration. Such a pair is
refused (``mismatched``). By parameters (``--match params``), rows pair by the values of the
``param_*`` columns both files have, whatever their ids. Parameter values are compared as
text (surrounding spaces ignored): the command received the text, and ``1.10`` and ``1.1``
may be two versions. A spreadsheet that rewrote ``2.0`` as ``2`` gets a refused pair, which
says so, rather than a silent match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from doerunner.errors import InputError

BY_ID = "id"
BY_PARAMS = "params"
MATCHES = (BY_ID, BY_PARAMS)


@dataclass(frozen=True)
class Pairing:
    """The compared rows, aligned: row ``i`` of the comparison is ``base_ids[i]`` against
    ``new_ids[i]`` (``None``: the case is in one file only), shown as ``labels[i]``;
    base's rows first in their order, then the new-only ones.

    ``mismatched``: row position → what differs (``level: 2 → 3``), for pairs refused
    because the same id names different parameters. ``params``: the ``param_*`` columns
    both files have (what pairs were checked or matched on); ``one_sided``: those in one
    file only (not used)."""

    base_ids: list[str | None]
    new_ids: list[str | None]
    labels: list[str]
    match: str
    params: tuple[str, ...]
    one_sided: tuple[str, ...]
    mismatched: dict[int, str] = field(default_factory=dict)
    renamed: dict[int, str] = field(default_factory=dict)  # row → base's id, when it differs

    @property
    def common(self) -> int:
        """How many rows are in both files (refused pairs included)."""
        return sum(b is not None and n is not None
                   for b, n in zip(self.base_ids, self.new_ids, strict=True))


def _canonical(text: str) -> str:
    return text.strip()


def _param_columns(df: pd.DataFrame) -> set[str]:
    return {c for c in df.columns if str(c).startswith("param_")}


def pair_rows(base: pd.DataFrame, new: pd.DataFrame, match: str = BY_ID, *,
              base_name: str = "base", new_name: str = "new") -> Pairing:
    """Pair the rows of two metrics.csv tables (strings, as ``read_metrics`` gives them).
    Raises ``InputError`` for an unknown ``match``, a duplicate case_id, parameters that
    are not unique in a file or absent with ``--match params``, or no row in common."""
    if match not in MATCHES:
        raise InputError(f"--match must be one of {', '.join(MATCHES)}, not {match!r}")
    for df, name in ((base, base_name), (new, new_name)):
        dup = df["case_id"][df["case_id"].duplicated()]
        if len(dup):
            raise InputError(f"{name}: case_id {dup.iloc[0]!r} appears more than once")
    pb, pn = _param_columns(base), _param_columns(new)
    params = tuple(sorted(pb & pn))
    one_sided = tuple(sorted(pb ^ pn))
    base_ids = base["case_id"].astype(str).tolist()
    new_ids = new["case_id"].astype(str).tolist()
    if match == BY_PARAMS:
        if not params:
            raise InputError(f"{base_name} and {new_name} have no param_* column in common: "
                             "nothing to match by parameters")
        base_keys = _keys(base, params, base_name)
        new_keys = _keys(new, params, new_name)
    else:
        base_keys, new_keys = base_ids, new_ids
    where = {k: i for i, k in enumerate(new_keys)}
    b_out: list[str | None] = []
    n_out: list[str | None] = []
    labels: list[str] = []
    renamed: dict[int, str] = {}
    mismatched: dict[int, str] = {}
    used: set[int] = set()
    base_values = _values(base, params)
    new_values = _values(new, params)
    for i, key in enumerate(base_keys):
        j = where.get(key)
        b_out.append(base_ids[i])
        n_out.append(None if j is None else new_ids[j])
        labels.append(base_ids[i] if j is None else new_ids[j])
        if j is None:
            continue
        used.add(j)
        if match == BY_PARAMS and new_ids[j] != base_ids[i]:
            renamed[len(labels) - 1] = base_ids[i]
        if match == BY_ID:
            diff = [f"{p.removeprefix('param_')}: {base_values[p][i]} → {new_values[p][j]}"
                    for p in params
                    if _canonical(base_values[p][i]) != _canonical(new_values[p][j])]
            if diff:
                mismatched[len(labels) - 1] = "; ".join(diff)
    for j, cid in enumerate(new_ids):
        if j not in used:
            b_out.append(None)
            n_out.append(cid)
            labels.append(cid)
    pairing = Pairing(b_out, n_out, labels, match, params, one_sided, mismatched, renamed)
    if not pairing.common:
        what = "case_id" if match == BY_ID else "parameter point"
        raise InputError(f"{base_name} and {new_name} have no {what} in common")
    return pairing


def _values(df: pd.DataFrame, params: tuple[str, ...]) -> dict[str, list[str]]:
    return {p: df[p].astype(str).tolist() for p in params}


def _keys(df: pd.DataFrame, params: tuple[str, ...], name: str) -> list[str]:
    columns = [[_canonical(v) for v in df[p].astype(str).tolist()] for p in params]
    keys = ["\x1f".join(values) for values in zip(*columns, strict=True)]
    seen: dict[str, int] = {}
    ids = df["case_id"].astype(str).tolist()
    for i, k in enumerate(keys):
        if k in seen:
            point = ", ".join(f"{p.removeprefix('param_')}={df[p].iloc[i]}" for p in params)
            raise InputError(f"{name}: cases {ids[seen[k]]!r} and {ids[i]!r} have the same "
                             f"parameters ({point}): --match params needs each parameter "
                             "point once")
        seen[k] = i
    return keys
