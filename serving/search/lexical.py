"""Lexical retrieval: BM25 over product text in an in-memory tantivy index, typo tolerant.

Text fields are analysed twice: stemmed (so "shoes" finds "shoe", scored by BM25 with per-field
boosts) and as plain folded words (so fuzzy terms can match a typo against the word as written:
"runnign" is one transposition from "running", but four edits from its stem "run"). A query word
matches when any field matches its stem or, for words long enough to have typos, any word field is
within its edit distance (1 from 4 letters, 2 from 8, like Elasticsearch's AUTO fuzziness).

Strict queries need every word except stop words (AND); the relaxed fallback needs any (OR) and
allows one more edit. The filters are also applied here, so the top hits are the top *matching*
hits even under a narrow filter (a single store, say); the columns re-check them anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import tantivy
from tantivy import Facet, FieldType, Filter, Occur, Query, TextAnalyzerBuilder, Tokenizer

from serving.search.columns import SearchFilters, brand_key
from serving.search.documents import ProductDocument

STEMMED, WORDS = "marketlake_stemmed", "marketlake_words"
MAX_TOKEN_CHARS = 40
# Field -> BM25 boost of a stemmed match.
STEMMED_FIELDS = {"title": 3.0, "brand": 2.0, "category": 2.0, "attributes": 1.5, "description": 0.5}
# Word fields searched with fuzzy terms (constant score, so a lower boost than a real match).
FUZZY_FIELDS = {"title_words": 1.0, "brand_words": 1.0, "category_words": 1.0}
PHRASE_BOOST = 2.0
MAX_QUERY_WORDS = 16
WRITER_HEAP = 64_000_000
# The indexing buffer while a whole catalog loads. Tantivy writes a segment whenever the buffer
# fills, and every search pays per segment (fuzzy terms most). Measured on a million products:
# 14 segments (a commit per batch) ~5 ms per query, 6 segments (one commit, 64 MB) 3.95 ms,
# 1 segment (one commit, 400 MB) 3.08 ms.
BULK_HEAP = 400_000_000


def _analyzer(*filters: Filter) -> tantivy.TextAnalyzer:
    builder = TextAnalyzerBuilder(Tokenizer.simple()).filter(Filter.remove_long(MAX_TOKEN_CHARS))
    for extra in (Filter.lowercase(), Filter.ascii_fold(), *filters):
        builder = builder.filter(extra)
    return builder.build()


def fuzzy_distance(word: str, relaxed: bool) -> int:
    distance = 0 if len(word) < 4 else 1 if len(word) < 8 else 2
    return min(2, distance + 1) if relaxed and len(word) >= 3 else distance


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("slot", indexed=True, fast=True)
    for name in STEMMED_FIELDS:
        builder.add_text_field(name, tokenizer_name=STEMMED)
    for name in FUZZY_FIELDS:
        builder.add_text_field(name, tokenizer_name=WORDS)
    builder.add_text_field("tenant", tokenizer_name="raw")
    builder.add_text_field("brand_key", tokenizer_name="raw")
    builder.add_facet_field("category_path")
    builder.add_float_field("price", indexed=True, fast=True)
    builder.add_float_field("rating", indexed=True, fast=True)
    builder.add_boolean_field("in_stock", indexed=True, fast=True)
    return builder.build()


@dataclass(frozen=True)
class QueryWords:
    """A query as the index sees it: folded words, their stems, and which are stop words."""

    words: tuple[str, ...]
    stems: tuple[str, ...]
    stop: tuple[bool, ...]

    def __bool__(self) -> bool:
        return bool(self.words)


@dataclass(frozen=True)
class LexicalHits:
    slots: np.ndarray  # int64, best first
    scores: np.ndarray  # float32


class LexicalIndex:
    def __init__(self) -> None:
        self.schema = _schema()
        self.index = tantivy.Index(self.schema)
        self._stemmer, self._words = _analyzer(Filter.stemmer("english")), _analyzer()
        self._stop_words = _analyzer(Filter.stopword("english"))
        self.index.register_tokenizer(STEMMED, self._stemmer)
        self.index.register_tokenizer(WORDS, self._words)
        self.index.config_reader(reload_policy="manual")
        self._writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)
        self._write_lock = threading.Lock()
        self._bulk = False

    # -- writing ------------------------------------------------------------------------------

    def _document(self, slot: int, product: ProductDocument) -> tantivy.Document:
        document = tantivy.Document()
        document.add_unsigned("slot", slot)
        texts = {"title": product.title, "brand": product.brand or "", "category": product.category_text,
                 "attributes": product.attribute_text, "description": product.description}
        for name, value in texts.items():
            document.add_text(name, value)
        for name in ("title", "brand", "category"):
            document.add_text(f"{name}_words", texts[name])
        document.add_text("tenant", product.tenant_id)
        if product.brand:
            document.add_text("brand_key", brand_key(product.brand))
        if product.category:
            document.add_facet("category_path", Facet.from_string("/" + product.category))
        document.add_float("price", product.price)
        document.add_float("rating", product.rating_avg or 0.0)
        document.add_boolean("in_stock", product.in_stock)
        return document

    def apply(self, upserts: Iterable[tuple[int, ProductDocument]], removals: Iterable[int]) -> None:
        """Replace or add the given slots' documents, drop the removed slots, and publish."""
        with self._write_lock:
            for slot in removals:
                self._delete(slot)
            for slot, product in upserts:
                self._delete(slot)
                self._writer.add_document(self._document(slot, product))
            if not self._bulk:
                self._writer.commit()
                self.index.reload()

    def _delete(self, slot: int) -> None:
        # By query: delete_documents_by_term("slot", n) matches nothing on an unsigned field, which
        # left a changed product's old text searchable.
        self._writer.delete_documents_by_query(Query.term_query(self.schema, "slot", slot))

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Load many documents into few segments: inside, `apply` adds through a large buffer
        without publishing; everything is committed and published on leaving."""
        self._replace_writer(BULK_HEAP)
        self._bulk = True
        try:
            yield
        finally:
            self._bulk = False
            self._replace_writer(WRITER_HEAP)
            self.index.reload()

    def _replace_writer(self, heap_size: int) -> None:
        with self._write_lock:
            self._writer.commit()
            self._writer.wait_merging_threads()  # releases the index's one writer lock
            self._writer = self.index.writer(heap_size=heap_size, num_threads=1)

    # -- reading ------------------------------------------------------------------------------

    def analyse(self, text: str) -> QueryWords:
        words = tuple(self._words.analyze(text))[:MAX_QUERY_WORDS]
        stems = tuple((self._stemmer.analyze(word) or [word])[0] for word in words)
        stop = tuple(not self._stop_words.analyze(word) for word in words)
        return QueryWords(words, stems, stop if not all(stop) else (False,) * len(words))

    def _word_query(self, word: str, stem: str, relaxed: bool) -> Query:
        clauses = [Query.boost_query(Query.term_query(self.schema, name, stem), boost)
                   for name, boost in STEMMED_FIELDS.items()]
        distance = fuzzy_distance(word, relaxed)
        if distance:
            clauses += [Query.boost_query(Query.fuzzy_term_query(self.schema, name, word, distance, True), boost)
                        for name, boost in FUZZY_FIELDS.items()]
        return Query.boolean_query([(Occur.Should, clause) for clause in clauses])

    def text_query(self, words: QueryWords, relaxed: bool) -> Query:
        """All non-stop words must match (any word when relaxed); an exact title phrase scores more."""
        clauses = [
            (Occur.Should if relaxed or stop else Occur.Must, self._word_query(word, stem, relaxed))
            for word, stem, stop in zip(words.words, words.stems, words.stop, strict=True)
        ]
        content = [stem for stem, stop in zip(words.stems, words.stop, strict=True) if not stop]
        if len(content) > 1:
            phrase = Query.phrase_query(self.schema, "title", content, slop=1)
            clauses.append((Occur.Should, Query.boost_query(phrase, PHRASE_BOOST)))
        if relaxed or all(occur == Occur.Should for occur, _ in clauses):
            return Query.boolean_query(clauses, minimum_number_should_match=1)
        return Query.boolean_query(clauses)

    def filter_query(self, filters: SearchFilters) -> list[Query]:
        """The filters as zero-scoring clauses."""
        queries = []
        if filters.tenant_ids:
            queries.append(Query.term_set_query(self.schema, "tenant", list(filters.tenant_ids)))
        if filters.brands:
            queries.append(Query.term_set_query(self.schema, "brand_key", [brand_key(b) for b in filters.brands]))
        if filters.categories:
            queries.append(Query.boolean_query([
                (Occur.Should, Query.term_query(self.schema, "category_path", Facet.from_string("/" + path)))
                for path in filters.categories
            ]))
        if filters.price_min is not None or filters.price_max is not None:
            queries.append(Query.range_query(self.schema, "price", FieldType.Float, filters.price_min,
                                             filters.price_max))
        if filters.rating_min is not None:
            queries.append(Query.range_query(self.schema, "rating", FieldType.Float, filters.rating_min, None))
        if filters.in_stock is not None:
            queries.append(Query.term_query(self.schema, "in_stock", filters.in_stock))
        return [Query.const_score_query(query, 0.0) for query in queries]

    def search(self, words: QueryWords, filters: SearchFilters, limit: int, relaxed: bool = False) -> LexicalHits:
        query = self.text_query(words, relaxed)
        constraints = self.filter_query(filters)
        if constraints:
            query = Query.boolean_query([(Occur.Must, query), *((Occur.Must, c) for c in constraints)])
        searcher = self.index.searcher()
        # No count: counting every match costs a pass over all of them, and the top `limit` is
        # all the engine uses.
        result = searcher.search(query, limit, count=False)
        addresses = [address for _, address in result.hits]
        slots = np.array(searcher.fast_field_values("slot", addresses) if addresses else [], dtype=np.int64)
        scores = np.array([score for score, _ in result.hits], dtype=np.float32)
        return LexicalHits(slots, scores)

    def complete(self, words: QueryWords, limit: int) -> np.ndarray:
        """Slots of products whose title has the words in order, the last one as a prefix."""
        if not words:
            return np.array([], dtype=np.int64)
        searcher = self.index.searcher()
        query = Query.phrase_prefix_query(self.schema, "title_words", list(words.words))
        addresses = [address for _, address in searcher.search(query, limit, count=False).hits]
        return np.array(searcher.fast_field_values("slot", addresses) if addresses else [], dtype=np.int64)
