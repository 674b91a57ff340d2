"""A history of measurements: a plain list of flat records that saves to CSV and JSON."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Dict, Iterable, List, Union

PathLike = Union[str, Path]
TEXT_COLUMNS = ("layer", "site", "group", "quantity", "stop_reason", "note", "verdict")


def _plain(value: Any) -> Any:
    """JSON-ready scalars and lists (NumPy and torch scalars become Python numbers)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class History(list):
    """A list of records (dicts with the same keys); NaN is stored as null / an empty cell.

    Parameters
    ----------
    records : iterable of dict, optional
        The records, as for ``list``.

    Raises
    ------
    TypeError
        ``records`` is not iterable (as for ``list``).

    Examples
    --------
    >>> from relusv.torch import History
    >>> h = History([{"step": 1, "value": 0.5}])
    >>> h.select(step=1)[0]["value"]
    0.5
    """

    def columns(self) -> List[str]:
        seen: Dict[str, None] = {}
        for record in self:
            for key in record:
                seen.setdefault(key, None)
        return list(seen)

    def select(self, **criteria: Any) -> History:
        """The records whose fields equal every given value."""
        return History(r for r in self if all(r.get(k) == v for k, v in criteria.items()))

    def to_pandas(self):
        """A ``pandas.DataFrame`` with one row per record and one column per key (NaN where a record lacks it)."""
        import pandas as pd

        return pd.DataFrame.from_records(list(self), columns=self.columns())

    def __repr__(self) -> str:
        layers = sorted({str(r["layer"]) for r in self if r.get("layer") is not None})
        return f"History({len(self)} records, columns {self.columns()}, layers {layers})"

    def to_json(self, path: PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps([_plain(r) for r in self], indent=1))
        return path

    def to_csv(self, path: PathLike) -> Path:
        """One row per record; list values are written as JSON text."""
        path = Path(path)
        columns = self.columns()
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for record in self:
                row = {}
                for key in columns:
                    value = _plain(record.get(key))
                    row[key] = "" if value is None else json.dumps(value) if isinstance(value, (list, dict)) else value
                writer.writerow(row)
        return path

    @classmethod
    def from_json(cls, path: PathLike) -> History:
        return cls(_nan_for_null(r) for r in json.loads(Path(path).read_text()))

    @classmethod
    def from_csv(cls, path: PathLike, text_columns: Iterable[str] = TEXT_COLUMNS) -> History:
        """Records back from ``to_csv``: numbers, booleans and lists parsed, except in ``text_columns``.

        CSV has no types, so columns that hold names (a layer called ``"0"``)
        are named here and kept as text.
        """
        text = set(text_columns)
        with Path(path).open(newline="") as handle:
            return cls({k: (v if k in text and v != "" else _parse_cell(v)) for k, v in row.items()}
                       for row in csv.DictReader(handle))


def _nan_for_null(record: Dict[str, Any]) -> Dict[str, Any]:
    return {k: (math.nan if v is None else v) for k, v in record.items()}


def _parse_cell(text: str) -> Any:
    if text == "":
        return math.nan
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def as_records(source: Any) -> Iterable[Dict[str, Any]]:
    """Records from a History, a list of dicts, or an object with a ``history`` attribute."""
    return getattr(source, "history", source)
