"""What a run did, from its monitoring db, as typed records.

```python
with pl.monitoring.open("run.db") as db:          # the latest run in the file
    for task in db.tasks().by_app("simulate").slowest(5):
        print(task.task, task.wall_seconds, task.cpu_seconds, task.peak_rss)
    failed = db.tasks().failed().list()
    culprit = db.tasks().on_node("node17").biggest(1).list()
    for node in db.nodes():
        print(node.name, node.max_cpu_percent, node.max_mem_used)
```

The file is the one ``Runtime(monitor="run.db")`` writes (see docs/observe.md); it may
be read while the run goes on.
"""

from typing import TYPE_CHECKING

# Imported when first used (see plait._lazy): the runtime writes a run through _schema and
# _writer, and needs none of the queries below to start.
if TYPE_CHECKING:
    from plait.backends import NodeSample, TaskSample
    from plait.monitoring._db import Attempt, Database, FailedCall, Node, Query, Run, Task, open
    from plait.monitoring._summary import AppStats, Bar, Failure, RunSummary
    from plait.monitoring._usage import (
        MIN_MEASURABLE_SECONDS,
        OUTLIER_FACTOR,
        OUTLIER_MARGIN,
        AppUsage,
        NodeSeries,
        Outlier,
        Resources,
        TaskSeries,
    )
else:
    from plait._lazy import exports

    __getattr__, __dir__ = exports(
        __name__,
        {
            "plait.backends": ["NodeSample", "TaskSample"],
            "plait.monitoring._db": ["Attempt", "Database", "FailedCall", "Node", "Query", "Run", "Task", "open"],
            "plait.monitoring._summary": ["AppStats", "Bar", "Failure", "RunSummary"],
            "plait.monitoring._usage": [
                "MIN_MEASURABLE_SECONDS",
                "OUTLIER_FACTOR",
                "OUTLIER_MARGIN",
                "AppUsage",
                "NodeSeries",
                "Outlier",
                "Resources",
                "TaskSeries",
            ],
        },
    )

__all__ = [
    "MIN_MEASURABLE_SECONDS",
    "OUTLIER_FACTOR",
    "OUTLIER_MARGIN",
    "AppStats",
    "AppUsage",
    "Attempt",
    "Bar",
    "Database",
    "FailedCall",
    "Failure",
    "Node",
    "NodeSample",
    "NodeSeries",
    "Outlier",
    "Query",
    "Resources",
    "Run",
    "RunSummary",
    "Task",
    "TaskSample",
    "TaskSeries",
    "open",
]
