"""Building blocks shared by the models: layers, attention, Transformer layers, scenario routing,
losses and a PCA projection.

* :mod:`~mtrec.nn.layers`: ``MLP``, ``FeatureEmbedding`` (built from a declared schema),
  ``BatchedMLP`` (E independent MLPs as stacked weights, one batched matmul per layer).
* :mod:`~mtrec.nn.attention`: scaled dot-product and multi-head attention.
* :mod:`~mtrec.nn.transformer`: positional encodings, encoder and decoder layers.
* :mod:`~mtrec.nn.encoder_decoder`: a Transformer encoder-decoder with greedy and beam decoding.
* :mod:`~mtrec.nn.scenario`: per-scenario parameters applied by grouping rows by scenario
  (``grouped_matmul``, ``ScenarioRouter``, ``StarLinear``).
* :mod:`~mtrec.nn.losses`: ``masked_bce`` (NaN = unlabelled) and ``check_labels``.
* :mod:`~mtrec.nn.pca`: ``pca_project``, vectors centred and projected on their top principal axes.

This layer imports only :mod:`mtrec.data` and :mod:`mtrec.utils` (checked by ``make lint``).
"""
