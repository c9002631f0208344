"""Decoding: the types the search stack shares, the engine, search policies and their registry, ensembles,
precision, the vocabulary shortlist, the translator, output formats, word alignment, scores, evaluation.
"""
