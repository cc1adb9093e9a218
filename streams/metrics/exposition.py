"""The KPI families of /metrics as Prometheus text (format 0.0.4), re-rendered only where something changed.

The text of every family is kept per scope: the lines of one scope in one family. ``render()``
re-renders, for each scope whose totals changed since the last call (``WindowTotals.take_changes``,
``OpenPipeline.take_changes``), only the families that read a changed counter, and drops the lines
of scopes that are gone. ``assemble()`` joins the families whose lines changed, each one block: its
HELP and TYPE lines, then its samples by scope key (windows in catalog order, funnel details by
window name), which is what ``KpiCollector`` gives prometheus-client, byte for byte. Both are
iterators: each step is one scope or one family, so the caller can yield to the event loop between
steps. ``body()`` is the text of every family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import cast

from prometheus_client.utils import floatToGoString

from schemas.catalog import Catalog, WindowName
from schemas.scopes import Scope, ScopeKind
from streams.metrics.kpi_families import (
    KPI_LABELS,
    Family,
    WindowView,
    kpi_families,
    label_values,
    open_samples,
    window_samples,
)
from streams.readout.open_pipeline import OpenPipeline
from streams.readout.window_totals import WindowTotals

STEP_SCOPES = 20  # scopes of open deals re-rendered per step
format_value = cast(Callable[[float], str], floatToGoString)  # as prometheus-client writes sample values


def escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def label_text(names: Iterable[str], values: Iterable[str]) -> str:
    """``{name="value",...}`` sorted by name, as prometheus-client writes labels."""
    return (
        "{"
        + ",".join(f'{name}="{escape_label(value)}"' for name, value in sorted(zip(names, values, strict=True)))
        + "}"
    )


def family_header(name: str, help_text: str) -> bytes:
    escaped = help_text.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {escaped}\n# TYPE {name} gauge\n".encode()


def sample_lines(name: str, samples: Iterable[tuple[str, float]]) -> bytes:
    """Lines ``name{labels} value`` for (label text, value) pairs."""
    return "".join(f"{name}{labels} {format_value(value)}\n" for labels, value in samples).encode()


class KpiExposition:
    """Text of the KPI families, kept from ``totals`` and ``pipeline`` (see the module's docstring)."""

    def __init__(self, catalog: Catalog, totals: WindowTotals, pipeline: OpenPipeline) -> None:
        self._totals = totals
        self._pipeline = pipeline
        self._families = kpi_families(catalog)
        self._headers = [family_header(family.name, family.help) for family in self._families]
        self._chunks: list[dict[str, bytes]] = [{} for _ in self._families]  # scope key -> the scope's lines
        self._unsorted: set[int] = set()  # families with a scope added since they were last sorted
        self._blocks: list[bytes | None] = list(self._headers)  # a family's text; None: to assemble again
        self._by_kind: dict[ScopeKind, tuple[int, ...]] = {}  # families from window totals, per scope kind
        self._readers: dict[tuple[ScopeKind, str], tuple[int, ...]] = {}  # (kind, counter) -> the families reading it
        self._open = tuple(i for i, family in enumerate(self._families) if family.source == "open")
        self._visitors = next(i for i, family in enumerate(self._families) if family.source == "visitors")
        self._labels: dict[Scope, dict[WindowName, str]] = {}

    @property
    def families(self) -> tuple[Family, ...]:
        return self._families

    def render(self) -> Iterator[None]:
        """Re-render what changed since the last call, one family of one scope per step."""
        for scope, counters in self._totals.take_changes().items():
            yield from self._render_windows(scope, counters)
        for number, scope in enumerate(self._pipeline.take_changes(), 1):
            self._render_open(scope)
            if number % STEP_SCOPES == 0:
                yield

    def set_visitors(self, samples: Iterable[tuple[Scope, WindowName, int]]) -> None:
        """The unique visitors family, whole: its samples come from Redis, in the order given."""
        family = self._families[self._visitors]
        lines = sample_lines(family.name, ((self._label(scope, window), count) for scope, window, count in samples))
        self._blocks[self._visitors] = self._headers[self._visitors] + lines

    def assemble(self) -> Iterator[None]:
        """Join the text of every family whose lines changed, one family per step."""
        for index, block in enumerate(self._blocks):
            if block is not None:
                continue
            chunks = self._chunks[index]
            if index in self._unsorted:
                self._chunks[index] = chunks = dict(sorted(chunks.items()))
                self._unsorted.discard(index)
            self._blocks[index] = self._headers[index] + b"".join(chunks.values())
            yield

    def parts(self) -> list[bytes]:
        """The text of every KPI family, one part per family (assembling what ``assemble`` has not)."""
        for _ in self.assemble():
            pass
        return [block or b"" for block in self._blocks]

    def body(self) -> bytes:
        return b"".join(self.parts())

    def _render_windows(self, scope: Scope, counters: set[str] | None) -> Iterator[None]:
        present = self._totals.has(scope)
        if not present:
            self._labels.pop(scope, None)
        indices = (
            self._window_families(scope.kind) if counters is None or not present else self._reading(scope, counters)
        )
        views: dict[WindowName, Mapping[str, float]] = {}

        def view(window: WindowName) -> Mapping[str, float]:
            found = views.get(window)
            if found is None:
                found = views[window] = self._totals.view(scope, window)
            return found

        for index in indices:
            family = self._families[index]
            lines = self._window_lines(family, scope, view) if present else b""
            self._set_lines(index, scope, lines)
            yield

    def _window_lines(self, family: Family, scope: Scope, view: WindowView) -> bytes:
        samples = []
        for window, extra, value in window_samples(family, view):
            assert window is not None
            if extra:
                text = label_text(family.labels, label_values(window, scope.labels, extra))
            else:
                text = self._label(scope, window)
            samples.append((text, value))
        return sample_lines(family.name, samples)

    def _label(self, scope: Scope, window: WindowName) -> str:
        """The labels of a scope's sample in a window, rendered once."""
        labels = self._labels.get(scope)
        if labels is None:
            labels = self._labels[scope] = {}
        text = labels.get(window)
        if text is None:
            text = labels[window] = label_text(KPI_LABELS, [window, *scope.labels])
        return text

    def _render_open(self, scope: Scope) -> None:
        for index in self._open:
            family = self._families[index]
            samples = [
                (label_text(family.labels, label_values(None, scope.labels, extra)), value)
                for extra, value in open_samples(family, self._pipeline, scope)
            ]
            self._set_lines(index, scope, sample_lines(family.name, samples))

    def _set_lines(self, index: int, scope: Scope, lines: bytes) -> None:
        chunks = self._chunks[index]
        if lines:
            if chunks.get(scope.key) == lines:
                return
            if scope.key not in chunks:
                self._unsorted.add(index)
            chunks[scope.key] = lines
        elif chunks.pop(scope.key, None) is None:
            return
        self._blocks[index] = None

    def _window_families(self, kind: ScopeKind) -> tuple[int, ...]:
        found = self._by_kind.get(kind)
        if found is None:
            found = self._by_kind[kind] = tuple(
                i for i, family in enumerate(self._families) if family.source == "windows" and kind in family.kinds
            )
        return found

    def _reading(self, scope: Scope, counters: set[str]) -> set[int]:
        """The families of the scope's kind that read any of ``counters``."""
        indices: set[int] = set()
        for counter in counters:
            name = counter.split(":", 1)[0] + ":" if ":" in counter else counter  # per-deal names: by prefix
            key = (scope.kind, name)
            readers = self._readers.get(key)
            if readers is None:
                readers = self._readers[key] = tuple(
                    i for i in self._window_families(scope.kind) if self._families[i].reads(counter)
                )
            indices.update(readers)
        return indices
