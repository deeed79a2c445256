"""What every coderl_jax TFDS builder shares: the record layout, the file format, manual-file
lookup and the bad-row policy.

Record layout. Every example has three features: ``index`` (int64, the row's position in the
source, so readers can restore source order; TFDS stores examples in key-hash order),
``id`` (text) and ``record`` (text: compact JSON of a ``Problem`` or ``ReasoningItem``).
One JSON-text feature instead of a nested ``FeaturesDict`` is deliberate: the TestSpec kinds
have different fields and variable-length test lists, and ``tfds.features.Text`` and
``Scalar`` serialise to ``tf.train.Example`` protos without TensorFlow installed, so the
datasets build and read with ``tensorflow-datasets`` + ``array_record`` alone.

File format. ``array_record`` (random access; ``tfds.data_source`` / ``as_data_source``),
unless the caller passes another ``file_format``.

Bad rows. Parsers raise ``BadRowError`` naming builder, file, row index and field. By default
the error propagates and the build fails. Builders constructed with ``skip_bad_rows=True``
skip such rows instead: each is logged (warning) and counted in ``builder.skipped_rows``
(``{split: count}``, filled while the split is generated).
"""

from __future__ import annotations

import gzip
import inspect
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

logger = logging.getLogger(__name__)

DEFAULT_FILE_FORMAT = "array_record"


class BadRowError(ValueError):
    """A source row that cannot become a record. The message names builder, file, row, field."""

    def __init__(self, builder: str, file: str | Path, row: int, field: str, problem: str):
        self.builder, self.file, self.row, self.field = builder, str(file), row, field
        super().__init__(f"{builder}: {file}, row {row}, field {field!r}: {problem}")


class FieldError(ValueError):
    """Raised by row parsers for one field; the builder adds file and row (``BadRowError``)."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"field {field!r}: {problem}")


class ManualDataMissingError(FileNotFoundError):
    """A manual builder's input file is not where it must be put."""


def record_features() -> tfds.features.FeaturesDict:
    """The ``index`` / ``id`` / ``record`` features of every coderl_jax dataset."""
    return tfds.features.FeaturesDict(
        {
            "index": tfds.features.Scalar(dtype=np.int64),
            "id": tfds.features.Text(),
            "record": tfds.features.Text(),
        }
    )


# (row index within the split, source file, row index within that file, parse thunk); the
# thunk returns (id, record JSON text), None for an excluded row, or raises FieldError.
SourceRow = tuple[int, str, int, Callable[[], "tuple[str, str] | None"]]


class RecordBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A ``GeneratorBasedBuilder`` writing ``record_features`` to array_record files.

    Subclasses implement ``_split_generators`` returning
    ``{split: self._generate_examples(rows, split)}`` where ``rows`` yields ``SourceRow``s
    ``(index in split, file, row index in file, parse)``; ``parse()`` returns
    ``(id, json_text)``, None for a row legitimately outside the dataset (counted in
    ``excluded_rows``, e.g. math rows in a code release), or raises ``FieldError``.

    Constructor keywords (also accepted by ``tfds.builder(name, ...)``): ``skip_bad_rows``
    (see the module docstring) and ``file_format`` (default array_record).
    """

    def __init__(self, *, skip_bad_rows: bool = False, file_format: str | None = None, **kwargs):
        super().__init__(file_format=file_format or DEFAULT_FILE_FORMAT, **kwargs)
        self.skip_bad_rows = skip_bad_rows
        self.skipped_rows: dict[str, int] = {}
        self.excluded_rows: dict[str, int] = {}

    # TFDS's own ``code_path`` type-checks against the ``importlib_resources`` backport, which
    # is not installed here; the plain source path serves its only use for these builders
    # (looking for a checksums file next to the module, which download-free builders lack).
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path | None:
        return epath.Path(inspect.getfile(cls))

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=record_features(),
            # Saved next to the data (metadata.json): {"skipped_rows": {split: n},
            # "excluded_rows": {split: n}}, so readers of a built dataset see what was left out.
            metadata=tfds.core.MetadataDict(),
        )

    def _generate_examples(
        self, rows: Iterable[SourceRow], split: str
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Examples keyed by source row index; bad rows raise or are skipped and counted."""
        self.skipped_rows[split] = self.excluded_rows[split] = 0
        for index, file, row_in_file, parse in rows:
            try:
                parsed = parse()
            except (FieldError, ValueError, TypeError) as e:
                # ValueError/TypeError come from the record types' own validation (e.g. a
                # TestSpec with no tests); the row, not the code, is what is wrong.
                field = e.field if isinstance(e, FieldError) else "<record>"
                problem = e.problem if isinstance(e, FieldError) else f"{type(e).__name__}: {e}"
                error = BadRowError(self.name, file, row_in_file, field, problem)
                if not self.skip_bad_rows:
                    raise error from e
                self.skipped_rows[split] += 1
                logger.warning("skipping bad row: %s", error)
                continue
            if parsed is None:
                self.excluded_rows[split] += 1
                continue
            record_id, text = parsed
            yield index, {"index": index, "id": record_id, "record": text}
        for key, counts in (
            ("skipped_rows", self.skipped_rows),
            ("excluded_rows", self.excluded_rows),
        ):
            self.info.metadata.setdefault(key, {})[split] = counts[split]
        if self.skipped_rows[split]:
            logger.warning("%s/%s: skipped %d bad rows", self.name, split, self.skipped_rows[split])
        if self.excluded_rows[split]:
            logger.info(
                "%s/%s: excluded %d rows outside the dataset's scope",
                self.name,
                split,
                self.excluded_rows[split],
            )

    def optional_manual_files(self, dl_manager, patterns: tuple[str, ...]) -> list[Path]:
        """Files matching the first glob of ``patterns`` that matches; [] when none does."""
        manual_dir = getattr(dl_manager, "_manual_dir", None)
        if not manual_dir or not Path(manual_dir).is_dir():
            return []
        for pattern in patterns:
            found = sorted(Path(manual_dir).glob(pattern))
            if found:
                return found
        return []

    def manual_files(self, dl_manager, patterns: tuple[str, ...], what: str) -> list[Path]:
        """Files in the manual dir matching the first glob of ``patterns`` that matches.

        Raises ``ManualDataMissingError`` saying which file to put in which directory.
        """
        # The download manager's manual_dir property raises a generic AssertionError when the
        # directory is missing; read the configured path to say where the file goes.
        manual_dir = getattr(dl_manager, "_manual_dir", None)
        where = (
            f"the manual directory {manual_dir}"
            if manual_dir
            else "a manual directory (download_config.manual_dir, default <data_dir>/downloads/manual)"
        )
        hint = (
            f"{self.name}: put {what} ({' or '.join(patterns)}) in {where}. "
            f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()}"
        )
        if not manual_dir or not Path(manual_dir).is_dir():
            raise ManualDataMissingError(f"manual directory missing. {hint}")
        found = self.optional_manual_files(dl_manager, patterns)
        if found:
            return found
        raise ManualDataMissingError(f"no file matches in {manual_dir}. {hint}")


def jsonl_rows(paths: Iterable[Path], parse: Callable[[dict, int], Any]) -> Iterator[SourceRow]:
    """``SourceRow``s for each non-blank line of the JSONL files ``paths``, in order (gzip when
    a name ends in ``.gz``); the thunk decodes the line and returns ``parse(row, index)``."""
    index = 0
    for path in paths:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line_index, line in enumerate(f):
                if not line.strip():
                    continue
                yield (
                    index,
                    str(path),
                    line_index,
                    lambda line=line, i=index: parse(_json_row(line), i),
                )
                index += 1


def _json_row(line: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise FieldError("<line>", f"not valid JSON ({e})") from e
    if not isinstance(row, dict):
        raise FieldError("<line>", f"expected a JSON object, got {type(row).__name__}")
    return row


def required_str(row: dict, field: str, allow_empty: bool = False) -> str:
    """``row[field]`` as a string; ``FieldError`` if missing, not a string, or empty."""
    value = row.get(field)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise FieldError(field, f"expected a non-empty string, got {_short(value)}")
    return value


def optional_str(row: dict, field: str) -> str | None:
    """``row[field]`` when it is a non-empty string, None when absent/null/empty."""
    value = row.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FieldError(field, f"expected a string, got {_short(value)}")
    return value


def json_field(row: dict, field: str) -> Any:
    """``row[field]`` decoded when it is JSON text, returned as is when already decoded."""
    value = row.get(field)
    if value is None:
        raise FieldError(field, "missing")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise FieldError(field, f"not valid JSON ({e})") from e
    return value


def canonical_json(value: Any) -> str:
    """Compact JSON text of ``value`` (the form ``TestSpec(call)`` stores)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
