"""Why a landed file could not be loaded, in words for the department that sent it.

These messages reach ``quality.load_batches.reason``, the bulletin, logs and Dagster events,
so they never quote the file's content (a parser error quoting "the rest of the file" put 390
ID and phone numbers into all of them, issue 8) nor a server path: only what the clerk needs,
such as a row number or a sheet name.
"""


class UnreadableFile(Exception):
    """The file cannot be read at all; the message says why, in Chinese and English."""
