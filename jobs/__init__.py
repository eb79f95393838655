"""RQ job functions: importable module functions that take ids, run under an app context."""
