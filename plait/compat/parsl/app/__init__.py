"""``parsl.app``: the app decorators, their futures and errors."""
