"""Decoding: the engine, search policies, ensembles, precision, the vocabulary shortlist, the translator, output
formats, alignment, scores, evaluation.
"""
