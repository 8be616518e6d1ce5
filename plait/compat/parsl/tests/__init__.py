"""``parsl.tests``: only the ready-made configurations Parsl's own tests load."""
