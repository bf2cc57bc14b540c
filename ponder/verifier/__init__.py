"""Learned verifiers: probes on the policy's own hidden states, trained on its own labelled traces."""
