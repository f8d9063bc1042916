"""The RGMComm tasks (batched numpy VecEnvs)."""
