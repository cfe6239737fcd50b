"""Grammars for constrained tool calls: llguidance, fed by a never-failing ladder per schema."""

from verity.models.grammar._engine import (
    Constraint,
    GrammarError,
    VocabularyPieces,
    grammar_tokenizer,
    validate_lark,
    vocabulary_pieces,
)
from verity.models.grammar._ladder import JSON_WHITESPACE, SchemaGrammar, schema_grammar

__all__ = [
    "JSON_WHITESPACE",
    "Constraint",
    "GrammarError",
    "SchemaGrammar",
    "VocabularyPieces",
    "grammar_tokenizer",
    "schema_grammar",
    "validate_lark",
    "vocabulary_pieces",
]
