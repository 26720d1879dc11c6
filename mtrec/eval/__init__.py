"""Evaluation: metrics and one entry point per protocol.

* :mod:`~mtrec.eval.metrics`: AUC, GAUC, LogLoss, RMSE, NDCG/HR/Recall/Precision/MAP@K, MRR.
* :mod:`~mtrec.eval.click`: click models, random split: ``evaluate`` (scenario × task metrics).
* :mod:`~mtrec.eval.topk`: top-K models, per-user split: ``evaluate_topk``.
* :mod:`~mtrec.eval.next_item`: sequential models, leave-last-out: ``evaluate_next_item``.
* :mod:`~mtrec.eval.link_prediction`: knowledge-graph embeddings, filtered MRR / Hits@K.
* :mod:`~mtrec.eval.diversity`: item coverage and intra-list diversity of top-K lists.
* :mod:`~mtrec.eval.significance`: paired tests across seeds (t-test, bootstrap, Holm).
"""
