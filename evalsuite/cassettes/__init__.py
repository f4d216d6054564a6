"""Stage 4b: record and replay model calls with vcrpy cassettes, one JSON file per pytest item."""

from evalsuite.cassettes._cassette import MODES, CassetteError, CassetteHandle, is_not_recorded, use_cassette

__all__ = ["MODES", "CassetteError", "CassetteHandle", "is_not_recorded", "use_cassette"]
