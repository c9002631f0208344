"""Training: fitting a run, the trainer, one update, optimization, the moving average, validation, the end of a
run, run state, torchrun jobs, reporters, TensorBoard.
"""
