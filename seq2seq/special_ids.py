"""The special token ids, fixed for every model this toolkit trains (sentencepiece is told to use them).

Batching, the network and search use them as constants; they live here, apart from the tokenizer, so that
those modules need not import sentencepiece.
"""

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
