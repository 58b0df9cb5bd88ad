from collections.abc import Sequence
from typing import Any

def format_rows(
    pieces: tuple[str, ...], kinds: bytes, columns: Sequence[Sequence[Any] | bytes]
) -> list[str]: ...
