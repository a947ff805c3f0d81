"""The ground floor: configuration, errors and file helpers. Imports nothing of kgrec's."""
