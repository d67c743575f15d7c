"""The loading machinery the Dagster assets call.

- ``readers``: any landing file (CSV in UTF-8/GB18030, XLSX, JSON, Parquet) -> ``SourceTable``s
  whose chunks are all-string polars frames named by the cleaned source header, plus
  ``__row``/``__total``.
- ``normalise``: source headers -> contract columns, raw strings -> typed values (+
  ``<col>__invalid``), personal data hashed, ``__raw`` / ``__extras`` JSON.
- ``privacy``: the keyed hash (HMAC-SHA256) personal data is replaced by.
- ``readahead``: the next chunk read and normalised on a thread while the current one is judged.
- ``batch``: one landed file loaded as one batch: judged, quarantined or staged, merged, accounted.
"""
