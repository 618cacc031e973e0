"""Evaluation: strict answer parser, metrics, LLM judge, statistics, meta-evaluation, tables."""
