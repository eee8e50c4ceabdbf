"""Which layers got slower: a baseline's stored layer profile against this run's, matched layer by layer.

Matching (:func:`match_layers`): by name; then by name without ONNX Runtime's ``fused`` prefix; then, for
what is left, by (op type, position among the layers of that op type) — a rebuild that renamed layers
(another TensorRT version, another exporter) still lines up, and those pairs are flagged *uncertain*. A
current layer that matches nothing is **new** when its op type has more layers than the baseline's op
counts say (an added block, a fusion that broke into several small layers), else it was one of the
baseline's tail layers (the stored profile keeps only the slowest ~95 %). A stored layer that matches
nothing has **vanished**. The deltas add up to the change of the profile's total. Pure functions.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from pytest_trtbench.layer_profile import LayerProfile, LayerTime

MATCHED, RENAMED, NEW, VANISHED, TAIL = "matched", "renamed", "new", "vanished", "tail"


@dataclass(frozen=True)
class LayerDelta:
    name: str
    op: str
    base_us: float
    """0 for a new layer."""
    now_us: float
    """0 for a vanished layer."""
    kind: str
    """:data:`MATCHED`, :data:`RENAMED` (by op type and position: uncertain), :data:`NEW`, :data:`VANISHED`
    or :data:`TAIL` (the baseline's small layers, as one bucket)."""
    base_name: str = ""
    """The baseline's name of a :data:`RENAMED` layer."""
    count: int = 1
    """Layers in a :data:`TAIL` bucket."""

    @property
    def delta_us(self) -> float:
        return self.now_us - self.base_us

    def label(self) -> str:
        if self.kind == TAIL:
            return f"{self.count} small layers (tail)"
        return f"{self.name} (was {self.base_name})" if self.kind == RENAMED else self.name


@dataclass(frozen=True)
class LayerDiff:
    base_total_us: float
    now_total_us: float
    deltas: tuple[LayerDelta, ...]
    """Largest slowdown first."""
    uncertain: int = 0
    """Layers matched by (op type, position) only."""
    notes: tuple[str, ...] = ()

    @property
    def total_delta_us(self) -> float:
        return self.now_total_us - self.base_total_us

    def of_kind(self, kind: str) -> list[LayerDelta]:
        return [d for d in self.deltas if d.kind == kind]

    def contributors(self, n: int = 5) -> list[LayerDelta]:
        """The *n* largest positive deltas."""
        return [d for d in self.deltas if d.delta_us > 0][:n]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "deltas": [asdict(d) for d in self.deltas], "notes": list(self.notes)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerDiff:
        return cls(float(data["base_total_us"]), float(data["now_total_us"]),
                   tuple(LayerDelta(**d) for d in data["deltas"]), int(data.get("uncertain", 0)),
                   tuple(data.get("notes", ())))


def normalized_name(name: str) -> str:
    """``fused /0/Gemm`` (ONNX Runtime's name for a node it fused) and ``/0/Gemm`` are the same node."""
    text = name.strip()
    return text[len("fused "):].strip() if text.startswith("fused ") else text


def match_layers(base: LayerProfile, now: LayerProfile) -> tuple[list[tuple[LayerTime, LayerTime, str]],
                                                                 list[LayerTime], list[LayerTime]]:
    """(matched pairs with :data:`MATCHED` / :data:`RENAMED`, unmatched current, unmatched stored)."""
    left = {layer.name: layer for layer in now.layers}
    pairs: list[tuple[LayerTime, LayerTime, str]] = []
    unmatched: list[LayerTime] = []
    for layer in base.layers:
        got = left.pop(layer.name, None)
        if got is not None:
            pairs.append((layer, got, MATCHED))
        else:
            unmatched.append(layer)
    by_norm: dict[str, LayerTime] = {}
    for layer in left.values():
        by_norm.setdefault(normalized_name(layer.name), layer)
    still: list[LayerTime] = []
    for layer in unmatched:
        got = by_norm.pop(normalized_name(layer.name), None)
        if got is not None and got.name in left:
            del left[got.name]
            pairs.append((layer, got, MATCHED))
        else:
            still.append(layer)
    by_position = {(layer.op, layer.position): layer for layer in left.values()}
    vanished: list[LayerTime] = []
    for layer in still:
        got = by_position.pop((layer.op, layer.position), None)
        if got is not None and got.name not in {b.name for b in base.layers}:
            del left[got.name]
            pairs.append((layer, got, RENAMED))
        else:
            vanished.append(layer)
    return pairs, list(left.values()), vanished


def _scopes(name: str) -> set[str]:
    """``/b2/fc1/MatMul`` -> ``{"/b2/fc1", "/b2"}``: the name's enclosing scopes."""
    parts = name.split("/")[:-1]
    return {"/".join(parts[:i]) for i in range(1, len(parts) + 1)} - {""}


def _split_new(unmatched: list[LayerTime], base: LayerProfile, now: LayerProfile) -> tuple[list[LayerTime], list[LayerTime]]:
    """Unmatched current layers as (new, from the baseline's tail): per op type, as many new ones as the
    op's layer count grew (a stored profile without op counts: those slower than its tail). Which ones:
    first those sharing a scope with layers that are certainly new (slower than any tail layer was), then
    those not at a position the baseline's tail held, then the slowest."""
    certain: set[str] = set()
    for layer in unmatched:
        if layer.us > base.tail_max_us:
            certain |= _scopes(layer.name)
    listed = {(layer.op, layer.position) for layer in base.layers}
    new: list[LayerTime] = []
    tail: list[LayerTime] = []
    by_op: dict[str, list[LayerTime]] = {}
    for layer in unmatched:
        by_op.setdefault(layer.op, []).append(layer)
    for op, layers in by_op.items():
        in_tail = {pos for pos in range(base.op_counts.get(op, 0)) if (op, pos) not in listed}
        layers.sort(key=lambda layer: (-max((len(s) for s in _scopes(layer.name) & certain), default=0),
                                       layer.position in in_tail, layer.us <= base.tail_max_us, -layer.us))
        if base.op_counts:
            grew = max(0, now.op_counts.get(op, len(layers)) - base.op_counts.get(op, 0))
        else:
            grew = sum(layer.us > base.tail_max_us for layer in layers)
        new += layers[:grew]
        tail += layers[grew:]
    return new, tail


def diff_profiles(base: LayerProfile, now: LayerProfile) -> LayerDiff:
    """The per-layer change from the stored *base* profile to the current (full) *now* profile."""
    pairs, unmatched, vanished = match_layers(base, now)
    new, from_tail = _split_new(unmatched, base, now)
    deltas = [LayerDelta(cur.name, cur.op, old.us, cur.us, kind, old.name if kind == RENAMED else "")
              for old, cur, kind in pairs]
    deltas += [LayerDelta(layer.name, layer.op, 0.0, layer.us, NEW) for layer in new]
    deltas += [LayerDelta(layer.name, layer.op, layer.us, 0.0, VANISHED) for layer in vanished]
    if base.tail_count or from_tail:
        deltas.append(LayerDelta("", "", base.tail_us, sum(layer.us for layer in from_tail), TAIL,
                                 count=max(base.tail_count, len(from_tail))))
    deltas.sort(key=lambda d: -d.delta_us)
    notes = []
    if (base.source, base.clock) != (now.source, now.clock):
        notes.append(f"the baseline's profile was measured differently ({base.source}, {base.clock} clock; "
                     f"now {now.source}, {now.clock} clock): compare shares, not µs")
    return LayerDiff(base.total_us, now.total_us, tuple(deltas), sum(d.kind == RENAMED for d in deltas), tuple(notes))


def _ms(us: float, sign: bool = False) -> str:
    return f"{us / 1000:+.3f} ms" if sign else f"{us / 1000:.3f} ms"


def _ops(layers: list[LayerDelta]) -> str:
    counts: dict[str, int] = {}
    for d in layers:
        counts[d.op] = counts.get(d.op, 0) + 1
    parts = sorted(counts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{n} {op}" for op, n in parts[:3]) + (", ..." if len(parts) > 3 else "")


def _share_of(part: float, total: float, where: str) -> str:
    if part <= total:
        return f"{_ms(part, True)} of {_ms(total, True)} is in {where}"
    return f"{where}: {_ms(part, True)}; the other layers changed by {_ms(total - part, True)} (net {_ms(total, True)})"


def reading(diff: LayerDiff) -> str:
    """One line: where the slowdown is (``+0.31 ms of +0.34 ms is in 2 new MatMul layers``)."""
    total = diff.total_delta_us
    if not total > 0:
        return (f"the layers add up to {_ms(total, True)}: the slowdown is not inside the layers "
                "(launch overhead, host work, clocks?)")
    new = diff.of_kind(NEW)
    new_us = sum(d.delta_us for d in new)
    if new and new_us >= 0.5 * total:
        where = f"{len(new)} new layer{'s' if len(new) > 1 else ''} ({_ops(new)})"
        return _share_of(new_us, total, where)
    top = diff.contributors(1)
    if top and top[0].delta_us >= 0.5 * total:
        d = top[0]
        times = f", {d.base_us:.1f} -> {d.now_us:.1f} µs" + (f" (x{d.now_us / d.base_us:.1f})" if d.base_us > 0 else "")
        flag = " (matched by op type and position: uncertain)" if d.kind == RENAMED else ""
        return _share_of(d.delta_us, total, f"{d.label()} ({d.op}){times}{flag}")
    running, picked = 0.0, []
    for d in diff.contributors(len(diff.deltas)):
        picked.append(d)
        running += d.delta_us
        if running >= 0.5 * total:
            break
    if len(picked) <= 3:
        names = " and ".join(f"{d.label()} ({d.op}{', new' if d.kind == NEW else ''})" for d in picked)
        return _share_of(running, total, f"{len(picked)} layers: {names}")
    return _share_of(running, total, f"{len(picked)} layers ({_ops(picked)}), the largest {picked[0].label()}")


def text_lines(diff: LayerDiff, top: int = 5) -> list[str]:
    """The failure text's layer block (without its heading line)."""
    total = diff.total_delta_us
    lines = [f"reading: {reading(diff)}"]
    contributors = diff.contributors(top)
    if contributors:
        lines.append("top contributors (layer, op, baseline -> now, change, share of the total change):")
        for d in contributors:
            share = f"{100 * d.delta_us / total:.0f} %" if total > 0 else "-"
            before = "new" if d.kind == NEW else _ms(d.base_us)
            mark = " ~uncertain match" if d.kind == RENAMED else ""
            lines.append(f"  {d.label()}  {d.op or '-'}  {before} -> {_ms(d.now_us)}  {_ms(d.delta_us, True)}  {share}{mark}")
    for kind, title in ((NEW, "new layers"), (VANISHED, "vanished layers")):
        items = diff.of_kind(kind)
        if items:
            shown = ", ".join(f"{d.name} ({d.op})" for d in items[:4]) + (f", +{len(items) - 4} more" if len(items) > 4 else "")
            lines.append(f"{title}: {len(items)} ({_ms(sum(d.delta_us for d in items), True)}): {shown}")
    if diff.uncertain:
        lines.append(f"matching uncertain: {diff.uncertain} layer(s) matched by (op type, position), not by name "
                     "(the builder renamed them)")
    lines += list(diff.notes)
    return lines


def csv_cell(diff: LayerDiff, top: int = 3) -> str:
    """Compact: ``+0.140ms /blocks.2/fc1/MatMul [MatMul new]; ...`` (``~`` marks an uncertain match)."""
    parts = []
    for d in diff.contributors(top):
        tag = {NEW: " new", RENAMED: " ~renamed", TAIL: ""}.get(d.kind, "")
        name = d.label() if d.kind != RENAMED else d.name
        parts.append(f"{d.delta_us / 1000:+.3f}ms {name} [{d.op or 'tail'}{tag}]")
    return "; ".join(parts)
