"""``parsl.data_provider``: files."""
