"""Hypothesis strategies for contract messages, derived from the msgspec models themselves."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import strategies as st

from contract import KINDS, Batch
from contract.readings import RESERVED_TAG_KEYS, Reading

NOW = 1_790_000_000_000


def _for_type(t: msgspec.inspect.Type) -> st.SearchStrategy[Any]:
    if isinstance(t, msgspec.inspect.Metadata):  # a pattern the codec checks (contract.readings.DeviceId)
        pattern = (t.extra_json_schema or {}).get("pattern")
        if isinstance(t.type, msgspec.inspect.StrType) and pattern:
            return st.from_regex(pattern, fullmatch=True).filter(lambda s: s.isascii())
        return _for_type(t.type)
    if isinstance(t, msgspec.inspect.UnionType):
        inner = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        return st.one_of(*(_for_type(x) for x in inner))
    if isinstance(t, msgspec.inspect.FloatType):
        lo = t.ge if t.ge is not None else -1e12
        hi = t.le if t.le is not None else 1e12
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    if isinstance(t, msgspec.inspect.IntType):
        return st.integers(t.ge if t.ge is not None else -(2**53), t.le if t.le is not None else 2**53)
    if isinstance(t, msgspec.inspect.LiteralType):
        return st.sampled_from(list(t.values))
    if isinstance(t, msgspec.inspect.BoolType):
        return st.booleans()
    if isinstance(t, msgspec.inspect.StrType):
        if t.pattern:
            return st.from_regex(t.pattern, fullmatch=True).filter(lambda s: s.isascii())
        return st.text(min_size=max(1, t.min_length or 0), max_size=t.max_length or 40)
    if isinstance(t, msgspec.inspect.DictType):
        return st.dictionaries(
            _for_type(t.key_type),
            _for_type(t.value_type),
            min_size=t.min_length or 0,
            max_size=t.max_length or 8,
        )
    raise TypeError(t)


def reading_of(kind: type[Reading]) -> st.SearchStrategy[Reading]:
    info = msgspec.inspect.type_info(kind)
    assert isinstance(info, msgspec.inspect.StructType)
    fields = {f.name: f for f in info.fields}
    own = {n for n in fields if n not in ("ts", "dev", "lat", "lon", "alt_m", "tags")}
    banned = RESERVED_TAG_KEYS | set(fields)
    tags = st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda k: k not in banned),
        st.text(min_size=1, max_size=20),
        max_size=3,
    )
    pos: st.SearchStrategy[dict[str, float]] = st.one_of(
        st.just({}),
        st.fixed_dictionaries({"lat": st.floats(-89.9, 89.9), "lon": st.floats(1.0, 179.9)}),
    )
    required = {n: _for_type(fields[n].type) for n in own if fields[n].required}
    optional = {n: _for_type(fields[n].type) for n in own if not fields[n].required}
    return st.builds(
        lambda base, p, t, req, opt: kind(**base, **p, **({"tags": t} if t else {}), **req, **opt),
        st.fixed_dictionaries(
            {"ts": st.integers(NOW - 86_400_000, NOW), "dev": _for_type(fields["dev"].type)}
        ),
        pos,
        tags,
        st.fixed_dictionaries(required),
        st.fixed_dictionaries({}, optional=optional),
    )


readings = st.one_of(*(reading_of(k) for k in KINDS.values()))
batches = st.builds(
    lambda gw, seq, rs: Batch(v=1, gw=gw, seq=seq, readings=rs),
    st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True),
    st.integers(0, 2**63 - 1),
    st.lists(readings, min_size=1, max_size=8),
)
