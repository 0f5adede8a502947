"""Making the reader and the verifier's data: everything that trains, validates, exports or averages models.

Serving lives in :mod:`qa.reader` (load, decode, aggregate) and :mod:`qa.verifier` (score); this package may use
their public functions (the same decoding is what validation measures), never the other way round.
"""
