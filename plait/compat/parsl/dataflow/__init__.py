"""``parsl.dataflow``: the loaded configuration, futures and dependency errors."""
