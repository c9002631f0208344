"""The network: attention (one class per score), encoder, decoder, the fused input-feeding loop, word dropout,
the loss, checkpoints, building the model.
"""
