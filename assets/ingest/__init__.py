"""The loading machinery the Dagster assets call.

- ``readers``: any landing file (CSV in UTF-8/GB18030, XLSX, JSON, Parquet) -> ``SourceTable``s
  whose
  chunks are all-string polars frames named by the cleaned source header, plus
  ``__row``/``__total``.
- ``normalise``: source headers -> contract columns, raw strings -> typed values (+
  ``<col>__invalid``),
  personal data hashed, ``__raw`` / ``__extras`` JSON.
- ``privacy``: the keyed hash (HMAC-SHA256) personal data is replaced by.
"""
