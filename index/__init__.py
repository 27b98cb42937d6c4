"""trialsift's search side (sentence-transformers embeddings in FAISS); built on the extraction output."""
