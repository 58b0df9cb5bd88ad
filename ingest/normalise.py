"""Operator names as the operator of the park wants them stored: aliases and MCC/MNC codes.

Technology names are normalised by the contract decoder (``lte`` → ``LTE``); operator names are
not unambiguous without a table, so the ingester settings carry one
(``[ingest.operator_aliases]``, ``[ingest.operators_by_plmn]``).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from contract.readings import AnyReading, Cellular


class OperatorNames:
    """Rename cellular operators by MCC/MNC (when the reading carries both) or by alias.

    Args:
        aliases: spelling → stored name, matched case-insensitively.
        by_plmn: ``"MCC-MNC"`` → stored name (``"452-04"``); an MNC is looked up with two
            digits, then with three.
    """

    def __init__(self, aliases: Mapping[str, str], by_plmn: Mapping[str, str]) -> None:
        self._aliases = {k.strip().casefold(): v for k, v in aliases.items()}
        self._plmn = dict(by_plmn)

    def __bool__(self) -> bool:
        return bool(self._aliases or self._plmn)

    def name(self, reading: Cellular) -> str:
        """The operator name to store for one reading."""
        if self._plmn and reading.mcc is not None and reading.mnc is not None:
            for key in (f"{reading.mcc:03d}-{reading.mnc:02d}", f"{reading.mcc:03d}-{reading.mnc:03d}"):
                found = self._plmn.get(key)
                if found is not None:
                    return found
        return self._aliases.get(reading.operator.strip().casefold(), reading.operator)

    def apply(self, readings: list[AnyReading]) -> list[AnyReading]:
        """``readings`` with renamed operators (the same list when nothing changes)."""
        if not self:
            return readings
        out: list[AnyReading] = []
        for r in readings:
            if type(r) is Cellular:
                name = self.name(r)
                if name != r.operator:
                    r = msgspec.structs.replace(r, operator=name)
            out.append(r)
        return out
