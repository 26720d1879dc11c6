"""Sequential (next-item) models: popularity, co-occurrence, SASRec, a generative encoder-decoder."""
