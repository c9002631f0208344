"""Plumbing: atomic writes, the device, logging, stop signals, text streams, plots, the model directory's layout.
"""
