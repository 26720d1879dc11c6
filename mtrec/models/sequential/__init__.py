"""Sequential (next-item) models: co-occurrence, SASRec, a generative encoder-decoder.

The popularity baseline serves this family too: :class:`mtrec.models.cf.popularity.Popularity`.
"""
