"""Generate ``sparkplug_b_pb2.py`` (and its ``.pyi`` stub) from ``sparkplug_b.proto``.

Run from the repository root after editing the schema::

    python -m ingest.sparkplug.generate          # rewrite the committed module
    python -m ingest.sparkplug.generate --check  # exit 1 when it is out of date

It uses the ``protoc`` bundled with ``grpcio-tools`` (a dev dependency), so the output depends
only on the locked grpcio-tools version, not on a system protoc.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = HERE / "sparkplug_b.proto"
OUTPUTS = ("sparkplug_b_pb2.py", "sparkplug_b_pb2.pyi")


def generated() -> dict[str, str]:
    """File name → text of the modules protoc makes from the committed schema.

    Raises:
        RuntimeError: protoc refused the schema (its messages are in the text).
    """
    from grpc_tools import protoc  # dev dependency: imported only when generating

    with tempfile.TemporaryDirectory() as out:
        args = ["protoc", f"-I{HERE}", f"--python_out={out}", f"--pyi_out={out}", str(PROTO)]
        rc = protoc.main(args)
        if rc != 0:
            raise RuntimeError(f"protoc failed on {PROTO} (exit status {rc}); fix the schema")
        return {name: (Path(out) / name).read_text() for name in OUTPUTS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the module is current")
    args = parser.parse_args(argv)
    stale = []
    for name, text in generated().items():
        path = HERE / name
        if not path.exists() or path.read_text() != text:
            stale.append(name)
            if not args.check:
                path.write_text(text)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}; run python -m ingest.sparkplug.generate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
