"""Top-K models: popularity (also the sequential baseline), kNN, BPR-MF, EASE, content, hybrids."""
