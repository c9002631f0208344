"""Data: corpora, sentencepiece, BPE-dropout, preparing a corpus once, token arrays, the splits, batching,
loading.
"""
