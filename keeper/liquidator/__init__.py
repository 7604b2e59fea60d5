"""The liquidator bot, split as the keeper is (``keeper/config.py``, ``daemon.py``, ``cli.py``).

- ``config.py``: :class:`LiquidatorSettings` (the bot's decision limits) and
  :class:`LiquidatorConfig` / :func:`load_liquidator_config` (the process: TOML + ``PM_*``).
- ``sources.py``: where the ACCOUNT leaves of an epoch come from (keeper store or proof API).
- ``outcome.py``: candidates, outcomes and the report of one tick (WAD USD ints).
- ``metrics.py``: the ``pm_liquidator_*`` Prometheus metrics.
- ``capital.py``: what a liquidation by transfer costs the liquidator (the deposit that
  brings the subaccount to IM), pure integer math.
- ``bot.py``: :class:`LiquidatorBot`, the decisions of one tick (bound -> owner -> view ->
  cost -> capital -> approve -> send), with the root-moved re-read.
- ``daemon.py``: :func:`build_liquidator` wires the parts into a lifecycle.
- ``cli.py``: ``liquidator run`` (mounted as ``pm liquidator run``).

Nothing is imported here, so that ``pm liquidator --help`` loads neither web3 nor the bot.
"""
