"""Serving: the end-to-end :class:`~mtrec.serving.recommender.Recommender` and its parts."""
