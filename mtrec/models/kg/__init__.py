"""Knowledge-graph models: embeddings trained on (head, relation, tail) triples, a KG-enhanced
CF model, and knowledge-path explanations."""
