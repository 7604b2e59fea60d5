"""Backtest of the risk engine on real daily history (``python -m risk_engine.backtest``).

Modules: ``data`` (the only file I/O: CSV loading), ``vol`` (the day's implied-vol rule),
``kupiec`` (coverage test), ``replay`` (margin the books each day, measure next-day loss),
``report`` (text and markdown tables, plots), ``__main__`` (the command line).
"""
