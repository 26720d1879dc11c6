"""Experiments that write result rows (each a ``main()`` run as ``python -m mtrec.experiments.X``)."""
