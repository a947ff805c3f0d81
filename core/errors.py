"""The exception tree of kgrec. Every message is meant for a person: it says what to fix.

    KgrecError
    ├── ConfigError            bad or missing configuration (env vars, options)
    ├── InputFileError         a missing file, or a file that is not in the expected format
    ├── GraphError             the graph database
    │   ├── GraphUnavailable   cannot connect / the embedded server does not start
    │   └── QueryRejected      a query refused before it was sent (read-only console)
    ├── RunNotFound            no trained run of that name
    └── DataError              data that cannot be used (e.g. an empty graph to train on)

The CLI turns any KgrecError into one red line on stderr and exit code 1; anything else is a bug.
"""


class KgrecError(Exception):
    """Base class: the message is shown to the user as is."""


class ConfigError(KgrecError):
    pass


class InputFileError(KgrecError):
    pass


class GraphError(KgrecError):
    pass


class GraphUnavailable(GraphError):
    pass


class QueryRejected(GraphError):
    pass


class RunNotFound(KgrecError):
    pass


class DataError(KgrecError):
    pass
