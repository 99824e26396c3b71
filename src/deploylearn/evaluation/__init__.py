"""Evaluation harnesses on known worlds (the synthetic generator's ground truth): the learning
report and the serving backtest. Not part of the nightly job."""
