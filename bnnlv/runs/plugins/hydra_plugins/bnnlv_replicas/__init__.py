"""bnnlv's Hydra plugins: the ``launcher=replicas`` launcher (bnnlv.runs.launcher)."""
