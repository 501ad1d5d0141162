"""Recommendations: the registry's champion item-vector model and its FAISS index, shopper
histories from the event feed, the search index's live catalogue, business rules and fallbacks."""
