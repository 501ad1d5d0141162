"""Product search: lexical (tantivy BM25) and semantic (MiniLM + FAISS) retrieval, fused and re-ranked."""
