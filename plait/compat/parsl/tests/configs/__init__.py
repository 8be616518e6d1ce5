"""Ready-made configurations, as ``parsl.tests.configs`` names them."""
