"""Environments written in the test folder, loaded by id (``tests/user_envs/signal_env.py:SignalEnv``)."""
