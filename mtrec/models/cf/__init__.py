"""Top-K collaborative filtering and content models: kNN, BPR-MF, EASE, content, hybrids."""
