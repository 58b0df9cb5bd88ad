"""Survey files (drive tests, probe logs) turned into wire-contract readings.

Pure conversion shared by ``parkwatch import`` and the API's upload: read rows from CSV, JSON Lines
or GeoJSON (:mod:`surveys.formats`), map their columns to contract fields
(:mod:`surveys.mappings`), and build readings as plain data (:mod:`surveys.convert`). Validation is
not done here: the readings go through the ingester like any MQTT batch.
"""

from surveys.convert import Converted, RowProblem, convert_rows
from surveys.formats import FORMATS, Format, read_rows
from surveys.mappings import BUILTIN_MAPPINGS, Mapping, load_mapping

__all__ = [
    "BUILTIN_MAPPINGS",
    "FORMATS",
    "Converted",
    "Format",
    "Mapping",
    "RowProblem",
    "convert_rows",
    "load_mapping",
    "read_rows",
]
