"""The CSV files of ``kpimon replay``: the data file's rows and the joined files, read through one error path.

However a CSV file fails to be read (missing, not in the mapping's
``csv.encoding``, not CSV), the reader raises CsvSourceError naming the file
and, where there is one, the line. What the rows mean is ``schemas.row_mapping``.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Generator, Iterator
from contextlib import closing
from pathlib import Path

from schemas.mapping import CsvFormat, CsvMapping, load_mapping
from schemas.row_mapping import Cells, JoinTable
from schemas.yaml_source import ConfigFileError, Location

Record = tuple[int, list[str]]
"""A CSV record: the line it starts on (from 1) and its cells."""


class CsvSourceError(ValueError):
    """A CSV file that cannot be used: the message names the file and, where there is one, the line."""


def not_decodable(path: Path, encoding: str) -> str:
    """A message naming the first line of ``path`` that is not ``encoding`` text."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 0
    with path.open("rb") as handle:
        for line, raw in enumerate(handle, start=1):  # noqa: B007 (the line is wanted after the loop)
            try:
                decoder.decode(raw)
            except UnicodeDecodeError:
                break
    return f"{path.name} line {line}: not {encoding} text (set csv.encoding in the mapping)"


def records(path: Path, csv_format: CsvFormat) -> Generator[Record, None, None]:
    """Every record of ``path`` with the line it starts on, blank ones (no cells) too; raises CsvSourceError."""
    lines_read = 0
    try:
        with path.open(newline="", encoding=csv_format.encoding) as handle:
            reader = csv.reader(handle, delimiter=csv_format.delimiter)
            for record in reader:
                first_line, lines_read = lines_read + 1, reader.line_num
                yield first_line, record
    except OSError as exc:
        raise CsvSourceError(f"{path.name}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CsvSourceError(not_decodable(path, csv_format.encoding)) from None
    except csv.Error as exc:
        raise CsvSourceError(f"{path.name} line {lines_read + 1}: unreadable CSV: {exc}") from None


def read_header(path: Path, csv_format: CsvFormat) -> list[str]:
    """The column names on the first line of a CSV file; CsvSourceError if it cannot be read or is no header."""
    with closing(records(path, csv_format)) as file_records:
        _, first = next(file_records, (0, []))
    header = [name.strip() for name in first]
    if not any(header):
        raise CsvSourceError(f"{path.name}: no header line")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise CsvSourceError(f"{path.name}: duplicate columns in the header: {', '.join(duplicated)}")
    return header


def rows(path: Path, csv_format: CsvFormat) -> Iterator[Record]:
    """The records after the header line, blank ones left out; raises CsvSourceError, while reading too."""
    file_records = records(path, csv_format)
    next(file_records, None)  # the header
    return ((line, record) for line, record in file_records if record)


def load_join_table(data_file: Path, name: str, mapping: CsvMapping) -> JoinTable:
    """The joined file ``name`` (next to ``data_file``) by key; CsvSourceError if unreadable or a key repeats."""
    join = mapping.join[name]
    path = data_file.parent / join.file
    columns = read_header(path, mapping.csv)
    by_key: dict[str, Cells] = {}
    for line, record in rows(path, mapping.csv):
        cells = {column: text.strip() for column, text in zip(columns, record, strict=False)}
        key = cells.get(join.key, "")
        if key in by_key:
            raise CsvSourceError(f"{join.file} line {line}: {join.key} {key!r} appears twice")
        by_key[key] = cells
    return JoinTable(join.file, tuple(columns), by_key)


def load_join_tables(data_file: Path, mapping: CsvMapping) -> dict[str, JoinTable]:
    """Every joined file of ``mapping``, by the join's name."""
    return {name: load_join_table(data_file, name, mapping) for name in mapping.join}


def load_mapping_for(path: Path, data_file: Path) -> CsvMapping:
    """``load_mapping``, with the columns the mapping names checked against the headers of its CSV files.

    The data file's header and the joined files' next to it; a joined file that
    cannot be read is a problem of its join, a data file that cannot be read
    the only problem (ConfigFileError either way).
    """

    def file_problems(mapping: CsvMapping) -> list[tuple[Location, str]]:
        problems: list[tuple[Location, str]] = []
        join_columns: dict[str, list[str]] = {}
        for name, join in mapping.join.items():
            try:
                join_columns[name] = read_header(data_file.parent / join.file, mapping.csv)
            except CsvSourceError as exc:
                problems.append((("join", name, "file"), str(exc)))
        try:
            columns = read_header(data_file, mapping.csv)
        except CsvSourceError as exc:
            raise ConfigFileError([str(exc)]) from exc
        return problems or mapping.column_problems(columns, join_columns)

    return load_mapping(path, file_problems)
